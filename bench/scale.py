"""Paper-scale cost on one device: tokens/s, MFU and peak memory of full SFT, the `ffn` region in
[.25, .5), the same region with the soft-mask, and LoRA, on random-init Llama shapes (no download).

Each configuration runs in its own child process (its own peak memory); full SFT uses FSDP2 with CPU
offload (one process) where `cofitune.infra.memory` says it would not fit the device. MFU = the model FLOPs
of the useful work / the device's dense bf16 peak; the useful work per token is the forward pass
(2 P), the activation gradients down to the lowest trained layer (2 P above it) and the weight
gradients of the trained tensors (2 T): 6 P for full SFT. Attention's s^2 FLOPs are not counted.

    python bench/scale.py --shape llama-1b --seq-len 1024 --micro-batch 8    # one GPU
    python bench/scale.py --shape llama-8b --seq-len 1024 --micro-batch 4    # one 80 GB GPU (full SFT offloaded)
    python bench/scale.py --shape tiny --device cpu --steps 2 --warmup 1     # what the tests run
Results: bench/results/scale_<shape>_<device>.{parquet,md}, with host and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from cofitune.infra.memory import FFN_Q2, FULL_SFT, GIB, SHAPES, ModelShape, Trained, plan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results

SHAPES = {**SHAPES, "tiny": ModelShape("tiny", 4, 64, 128, 4, 2, 384, tied=True)}
CONFIGS = ("full_sft", "ffn_q2", "ffn_q2_softmask", "lora_qv")
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM


def build(shape: ModelShape, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                         num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                         tie_word_embeddings=shape.tied, max_position_embeddings=8192)
    with torch.device(device):
        return LlamaForCausalLM(config)


def trained_of(config: str) -> Trained:
    if config == "full_sft":
        return FULL_SFT
    if config.startswith("ffn_q2"):
        return FFN_Q2
    return Trained("LoRA q v", (0.0, 1.0), ())


def useful_flops_per_token(shape: ModelShape, config: str, trainable: int) -> float:
    trained = trained_of(config)
    above = shape.layer_params() * (shape.layers - (0 if config.startswith("lora") else trained.lowest_layer(shape)))
    return 2 * shape.params() + 2 * above + 2 * trainable


def measure(shape_key: str, config: str, device: str, steps: int, warmup: int, micro_batch: int, seq_len: int, force_offload: bool) -> dict:
    from accelerate import Accelerator

    from cofitune.fine import masking
    from cofitune.methods.baselines import wrap_lora
    from cofitune.models import regions
    from cofitune.models.sharding import ShardingSettings, shard_model
    from cofitune.training.loop import TrainSettings, train

    shape = SHAPES[shape_key]
    cuda = device == "cuda"
    total_memory = torch.cuda.get_device_properties(0).total_memory if cuda else float("inf")
    fits = plan(shape, FULL_SFT, micro_batch=micro_batch, seq_len=seq_len).total <= 0.9 * total_memory
    offload = config == "full_sft" and (force_offload or not fits)
    model = build(shape, "cpu" if offload else device)
    names = regions.select_parameters(model, None if config == "full_sft" else (0.25, 0.5), "all" if config == "full_sft" else "ffn")
    if config.startswith("lora"):
        net = wrap_lora(model, 16, 32.0, ["q", "v"], 0.0, seed=0)
    else:
        regions.freeze_all_but(model, names)
        net = model
    precision = "bf16" if cuda else "no"
    if offload:  # one process, FSDP2 with parameters, gradients and AdamW state in host memory
        import torch.distributed as dist

        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29611")
        dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1)
        shard_model(net, ShardingSettings("fsdp", cpu_offload=True), device, "bf16" if cuda else "no")
    transform = None
    if config.endswith("softmask"):
        generator = torch.Generator().manual_seed(0)
        importance = {"head": torch.rand(shape.layers, shape.heads, generator=generator),
                      "intermediate": torch.rand(shape.layers, shape.intermediate, generator=generator),
                      "output": torch.rand(shape.layers, shape.hidden, generator=generator)}
        transform = masking.SoftMask(model, masking.row_scales(model, importance, names))
    generator = torch.Generator().manual_seed(1)
    rows = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, shape.vocab, (micro_batch * (warmup + steps), seq_len),
                                                                      generator=generator).tolist()]
    times: list[float] = []
    clock = [time.perf_counter()]

    def on_step(step: int, _record) -> None:
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - clock[0])
        clock[0] = now

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    settings = TrainSettings(learning_rate=1e-5, max_steps=warmup + steps, micro_batch_size=micro_batch, log_every_steps=10**6)
    train(net, rows, settings, Accelerator(mixed_precision="no" if offload else precision, cpu=not cuda), pad_id=0,
          grad_transform=transform, on_step=on_step)
    step_seconds = sorted(times[warmup:])[len(times[warmup:]) // 2]
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    tokens_per_second = micro_batch * seq_len / step_seconds
    peak = BF16_PEAK_TFLOPS.get(next((k for k in BF16_PEAK_TFLOPS if cuda and k in torch.cuda.get_device_name()), ""))
    flops = useful_flops_per_token(shape, config, trainable) * tokens_per_second
    return {
        "shape": shape.name, "config": config, "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "offload": offload, "precision": "bf16" if cuda else "fp32", "micro_batch": micro_batch, "seq_len": seq_len,
        "trainable_params": trainable, "total_params": shape.params(), "step_seconds": step_seconds, "tokens_per_second": tokens_per_second,
        "mfu": flops / (peak * 1e12) if peak else None,
        "peak_gib": (torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / GIB,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="llama-1b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--offload", action="store_true", help="offload full SFT even where it would fit (GPU only)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out-stem", default=None, help="results file stem (default scale_<shape>_<device>)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.shape, args.child, args.device, args.steps, args.warmup, args.micro_batch, args.seq_len, args.offload)))
        return
    rows = []
    for config in args.configs:
        cmd = [sys.executable, __file__, "--child", config, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"{config} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    by = {r["config"]: r for r in rows}
    lines = [f"# Scale benchmark: {rows[0]['shape']} on {rows[0]['device']} ({platform.node()}, torch {torch.__version__})", "",
             "| config | trainable | offload | step s | tokens/s | MFU | peak GiB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        lines.append(f"| {r['config']} | {r['trainable_params'] / r['total_params']:.1%} | {r['offload']} | {r['step_seconds']:.3f} | "
                     f"{r['tokens_per_second']:.0f} | {mfu} | {r['peak_gib']:.2f} |")
    if {"full_sft", "ffn_q2"} <= by.keys():
        full, region = by["full_sft"], by["ffn_q2"]
        lines += ["", f"ffn region / full SFT: step time {region['step_seconds'] / full['step_seconds']:.2f}, "
                      f"peak memory {region['peak_gib'] / full['peak_gib']:.2f}" + (" (full SFT offloaded: not comparable)" if full["offload"] else "")]
    if {"ffn_q2", "ffn_q2_softmask"} <= by.keys():
        lines.append(f"soft-mask overhead: {by['ffn_q2_softmask']['step_seconds'] / by['ffn_q2']['step_seconds'] - 1:+.1%} of the region step")
    write_results(args.out_stem or f"scale_{args.shape}_{args.device}", rows, lines)


if __name__ == "__main__":
    main()

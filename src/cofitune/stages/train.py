"""Rules `train_candidate` (accelerate-launched: `python -m cofitune.stages.train`) and `derive_weights`
(a model made from another's weights, untrained: Wise-FT). What differs by method, the recipe says."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cofitune.configuration.sections import TrainingSection
from cofitune.fine.importance_file import read_importance
from cofitune.fine.masking import SoftmaskSection, resolve_parts, soft_mask_for
from cofitune.infra import io
from cofitune.infra.logs import setup_logging
from cofitune.infra.records import TrainRecord
from cofitune.methods.candidates import candidate_from_spec
from cofitune.models import regions
from cofitune.models.modeling import empty_model, load_prepared, load_tokenizer
from cofitune.models.sharding import full_tensor, materialise, shard_model
from cofitune.stages.common import build_accelerator, json_arg, json_list_arg

log = logging.getLogger(__name__)


def train_candidate(
    *, model_dir: str | Path, data_dir: str | Path, candidate_spec: Mapping[str, Any], training: TrainingSection,
    trained_out: str | Path, metrics_out: str | Path, checkpoint_dir: str | Path, module_sets: Mapping[str, Sequence[str]] | None = None, importance_file: str | Path | None = None,
    softmask: SoftmaskSection | None = None, budget_from: str | Path | None = None,
) -> None:
    """Selective SFT of one candidate; writes the trained tensors (`trained_out`) and its TrainRecord
    (`metrics_out`), resuming from and then removing `checkpoint_dir` (kept with keep_checkpoint).
    Seed: `training.loop.seed`; curves: `training.report_to` (`cofitune.training.tracking`); `budget_from`: the TrainRecord of the model whose trained-parameter count the candidate matches."""
    from accelerate.utils import set_seed

    from cofitune.training.loop import chained, train
    from cofitune.training.tracking import check_report_to, tracked_run

    report_to = check_report_to(training.report_to)  # before any model is loaded
    if budget_from is not None:
        candidate_spec = {**candidate_spec, "budget_params": TrainRecord.read(budget_from).trainable_params}
    candidate = candidate_from_spec(candidate_spec)
    settings = replace(training.loop, update_fraction=candidate.recipe.update_fraction(candidate))
    seed, sharding = settings.seed, training.sharding
    # the curves, one run per candidate: beside its outputs (results/train/<candidate>/tracking/), not among them
    accelerator = build_accelerator(training.precision, report_to, Path(trained_out).parent / "tracking")
    set_seed(seed)
    # Sharded: build on the meta device and let process 0 read the weights (one host copy per node);
    # methods that add weights of their own (LoRA) load normally, so their initialisation is the same.
    low_memory = sharding.mode == "fsdp" and not candidate.recipe.adds_weights
    model, tokenizer = (empty_model(model_dir), load_tokenizer(model_dir)) if low_memory else load_prepared(model_dir)
    total_params = regions.count_parameters(model)
    trainable = candidate.trainable_names(model, module_sets, seed)
    net = candidate.recipe.network(model, candidate, trainable, seed)
    if not low_memory:
        net.to(accelerator.device)
    if sharding.mode == "fsdp":  # before the mask and the L2 anchor: FSDP2 replaces the parameters
        shard_model(net, sharding, accelerator.device.type, accelerator.mixed_precision)
        if low_memory:
            materialise(net, model_dir, accelerator.device.type)
    softmask = softmask or SoftmaskSection()  # the schema's defaults: parts auto, applied to the update
    parts = resolve_parts(softmask.parts, model, trainable)
    if candidate.softmask and importance_file is None:
        raise ValueError(f"candidate {candidate.id!r} uses the soft-mask but no importance file was given")
    importance = read_importance(importance_file).norm if candidate.softmask else None
    mask = soft_mask_for(model, candidate, importance, trainable, parts, softmask.apply, seed)
    transforms, rows = [*(mask.grad_transforms() if mask else []), *candidate.recipe.grad_transforms(net, candidate)], io.read_dataset(data_dir)
    n_trained = sum(p.numel() for p in net.parameters() if p.requires_grad)  # global sizes, sharded or not
    fingerprint = settings.fingerprint({
        "candidate": candidate.describe(), "options": dict(candidate.options), "trainable": trainable,
        "precision": accelerator.mixed_precision, "world": accelerator.num_processes,
        "mask": [io.file_digest(importance_file), softmask.apply] if mask else None, "parts": list(parts),
    })
    log.info("%s (%s): training %d of %d parameters on %d examples, soft-mask %s, %s, %d process(es), sharding %s",
             candidate.id, candidate.method, n_trained, total_params, len(rows), mask or "off",
             accelerator.mixed_precision, accelerator.num_processes, sharding.mode)
    metadata = {**candidate.describe(), "layer_indices": candidate.layer_indices(len(regions.decoder_layers(model))),
                "seed": seed, "fingerprint": fingerprint, "trainable_params": n_trained, "total_params": total_params,
                "learning_rate": settings.learning_rate, "precision": accelerator.mixed_precision, "processes": accelerator.num_processes}
    # end_training (leaving the block) also ends the process group: every collective stays inside
    with tracked_run(accelerator, report_to, candidate.id, metadata) as log_step:
        result = train(net, rows, settings, accelerator, pad_id=tokenizer.pad_token_id, checkpoint_dir=Path(checkpoint_dir),
                       fingerprint=fingerprint, grad_transform=chained(transforms),
                       step_scales=mask.step_scales() if mask else None, log_step=log_step)
        trained = {n: full_tensor(t) for n, t in candidate.recipe.trained_tensors(net, candidate, trainable).items()}  # all processes
        if accelerator.is_main_process:
            io.save_tensors(trained_out, trained, metadata={"candidate": candidate.id, "base": str(model_dir)})
            TrainRecord(
                **candidate.describe(), options=dict(candidate.options),
                layer_indices=candidate.layer_indices(len(regions.decoder_layers(model))), trainable_tensors=len(trainable),
                trainable_params=n_trained, total_params=total_params, steps=result.steps, resumed_from_step=result.resumed_from_step,
                final_loss=result.final_loss, input_tokens=result.input_tokens, target_tokens=result.target_tokens,
                wall_seconds=result.wall_seconds, tokens_per_second=result.input_tokens / max(result.wall_seconds, 1e-9),
                precision=accelerator.mixed_precision, processes=accelerator.num_processes, sharding=sharding.mode,
                softmask_tensors=len(mask) if mask else 0, softmask_parts=list(parts) if mask else [],
                softmask_apply=softmask.apply if mask else "", seed=seed,
                learning_rate=settings.learning_rate, history=result.history,
            ).write(metrics_out)
            if not training.keep_checkpoint:  # the outputs are written: resuming is no longer needed
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
        accelerator.wait_for_everyone()


def derive_weights(
    *, model_dir: str | Path, parent_file: str | Path, parent_metrics: str | Path, candidate_spec: Mapping[str, Any],
    trained_out: str | Path, metrics_out: str | Path,
) -> None:
    """A model its recipe makes from the base's and a trained parent's weights (Wise-FT); its record carries the parent's seed."""
    candidate = candidate_from_spec(candidate_spec)
    model, _ = load_prepared(model_dir)
    base = {n: p.detach() for n, p in model.named_parameters()}
    io.save_tensors(trained_out, candidate.recipe.derive(base, io.load_tensors(parent_file), candidate))
    n_layers = len(regions.decoder_layers(model))
    TrainRecord.untrained(candidate.describe(), dict(candidate.options), candidate.layer_indices(n_layers),
                          regions.count_parameters(model), seed=TrainRecord.read(parent_metrics).seed).write(metrics_out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofitune train", description="selective SFT of one candidate (run it under accelerate launch)")
    parser.add_argument("--model-dir", required=True, help="prepared base model folder")
    parser.add_argument("--data-dir", required=True, help="tokenized training data (prepare_data output)")
    parser.add_argument("--candidate", required=True, type=json_arg, help='JSON, e.g. {"layers": "q2", "modules": "ffn"}')
    parser.add_argument("--training", required=True, type=json_arg, help="JSON of the config's training section")
    parser.add_argument("--module-sets", type=json_arg, default={}, help="JSON: module set name -> roles")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--trained-out", required=True, help="the trained tensors (.safetensors)")
    parser.add_argument("--metrics-out", required=True, help="the TrainRecord (train_metrics.json)")
    parser.add_argument("--checkpoint-dir", required=True, help="resume state, removed when the training ends")
    parser.add_argument("--importance", help="combined importance (safetensors), for soft-masked candidates")
    parser.add_argument("--softmask", type=json_arg, default={}, help='JSON of the softmask section, e.g. {"parts": "auto", "apply": "update"}')
    parser.add_argument("--budget-from", help="train_metrics.json of the model whose trained parameters to match")
    parser.add_argument("--report-to", type=json_list_arg, default=os.environ.get("COFITUNE_REPORT_TO"), help="JSON list of trackers")
    args = parser.parse_args(argv)
    setup_logging()
    training = args.training if args.report_to is None else {**args.training, "report_to": args.report_to}
    train_candidate(model_dir=args.model_dir, data_dir=args.data_dir, candidate_spec=args.candidate,
                    training=TrainingSection.from_config(training, args.seed), trained_out=args.trained_out, metrics_out=args.metrics_out,
                    checkpoint_dir=args.checkpoint_dir, module_sets=args.module_sets, importance_file=args.importance,
                    softmask=SoftmaskSection.from_config(args.softmask), budget_from=args.budget_from)
    return 0


if __name__ == "__main__":
    sys.exit(main())

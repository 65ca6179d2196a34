"""Loading base models (hub id, local folder, GGUF file, installed package) and tiny test models."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from cofitune.infra import io

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"

# A ChatML-style template, so tiny test models exercise the chat-template path like real ones.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a base model comes from; mirrors the `model` section of the config."""

    name_or_path: str
    gguf_file: str | None = None
    from_package: str | None = None  # resolve name_or_path inside this installed distribution
    revision: str | None = None
    trust_remote_code: bool = False
    tiny: dict[str, Any] = field(default_factory=dict)  # overrides for builtin tiny models

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelSource:
        keys = ("name_or_path", "gguf_file", "from_package", "revision", "trust_remote_code", "tiny")
        return cls(**{k: cfg[k] for k in keys if cfg.get(k) is not None})

    def location(self) -> str:
        """Where to load from: a local folder (checked) or a hub id; raises FileNotFoundError naming the key."""
        if not self.from_package:
            return self._local_or_hub()
        try:
            root = Path(distribution(self.from_package).locate_file(self.name_or_path))
        except PackageNotFoundError as err:
            raise FileNotFoundError(
                f"model.from_package: Python package {self.from_package!r} is not installed"
            ) from err
        if not root.exists():
            raise FileNotFoundError(f"model: {root} not found inside package {self.from_package!r}")
        self._check_gguf(root)
        return str(root)

    def _local_or_hub(self) -> str:
        path = Path(self.name_or_path).expanduser()
        if path.exists():
            if path.is_file():
                raise FileNotFoundError(f"model.name_or_path: {path} is a file; give the model's folder (and model.gguf_file for a GGUF file)")
            self._check_gguf(path)
            if not self.gguf_file and not (path / "config.json").is_file():
                raise FileNotFoundError(f"model.name_or_path: {path} has no config.json: not a Hugging Face model folder")
            if not self.gguf_file:
                _check_model_folder(path)
            return str(path)
        if looks_like_a_path(self.name_or_path):
            raise FileNotFoundError(f"model.name_or_path: local folder {self.name_or_path!r} not found (resolved to {path.resolve()})")
        return self.name_or_path  # a hub id

    def _check_gguf(self, folder: Path) -> None:
        if self.gguf_file and not (folder / self.gguf_file).is_file():
            raise FileNotFoundError(f"model.gguf_file: {self.gguf_file!r} not found in {folder}")

    def problem(self) -> str | None:
        """What stops this source from loading, found without loading it (None when it looks loadable)."""
        if self.name_or_path.startswith(BUILTIN_PREFIX):
            kind = self.name_or_path.removeprefix(BUILTIN_PREFIX)
            return None if kind in TINY_KINDS else f"model.name_or_path: unknown builtin model {kind!r}; known: {', '.join(TINY_KINDS)}"
        try:
            self.location()
        except FileNotFoundError as err:
            return str(err)
        return None

    def model_type(self) -> str | None:
        """The architecture family (config.json's `model_type`) without loading the model: of a builtin,
        a local folder or a cached hub model; None where it is not known before the download (or GGUF)."""
        if self.name_or_path.startswith(BUILTIN_PREFIX):
            return TINY_MODEL_TYPES.get(self.name_or_path.removeprefix(BUILTIN_PREFIX))
        if self.gguf_file:
            return None
        try:
            where = self.location()
        except FileNotFoundError:
            return None
        config = Path(where) / "config.json"
        if not config.is_file():
            from huggingface_hub import try_to_load_from_cache

            try:
                cached = try_to_load_from_cache(where, "config.json", revision=self.revision)
            except ValueError:
                return None
            if not isinstance(cached, str):
                return None
            config = Path(cached)
        model_type = io.read_json(config).get("model_type")
        return model_type if isinstance(model_type, str) else None

    def offline_warning(self) -> str | None:
        """A hub id that cannot be downloaded here (offline, not cached): a plan can still be made."""
        if self.from_package or self.name_or_path.startswith(BUILTIN_PREFIX) or Path(self.name_or_path).expanduser().exists():
            return None
        if _offline() and not _in_hub_cache(self.name_or_path, self.revision):
            return (f"model.name_or_path: {self.name_or_path!r}: no local folder of that name was found, it is not in the Hugging Face cache, and "
                    "HF_HUB_OFFLINE=1 forbids downloading it: prepare_model will fail until it is downloaded (or give a local folder)")
        return None


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def _check_model_folder(path: Path) -> None:
    """What would fail late in loading, found from file names and headers: no tokenizer, a truncated weights file."""
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"model.name_or_path: {path} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): "
                                "save the tokenizer into the model's folder (tokenizer.save_pretrained)")
    for weights in sorted(path.glob("*.safetensors")):
        if problem := io.safetensors_problem(weights):
            raise FileNotFoundError(f"model.name_or_path: {weights} is {problem}")


def looks_like_a_path(name: str) -> bool:
    """Hub ids are 'name' or 'owner/name'; anything absolute, relative ('./', '../', '~') or deeper is a path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or name.endswith("/") or "\\" in name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)
    except ValueError:  # not a valid repo id either
        return False


def load_source(source: ModelSource, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (or build) the base model on CPU, exactly as configured, in the checkpoint's dtype."""
    if source.name_or_path.startswith(BUILTIN_PREFIX):
        return build_tiny_model(source.name_or_path.removeprefix(BUILTIN_PREFIX), seed=seed, **source.tiny)
    where = source.location()
    kwargs: dict[str, Any] = {"trust_remote_code": source.trust_remote_code}
    if source.revision:
        kwargs["revision"] = source.revision
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    # A checkpoint keeps its own dtype (an 8B bf16 model stays 16 GB, not a 32 GB fp32 copy); training
    # loads fp32 master weights from it. GGUF weights are dequantised to fp32.
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32 if source.gguf_file else "auto", **kwargs)
    if source.gguf_file:
        _drop_gguf_quantization(model)
    return model, tokenizer


def _drop_gguf_quantization(model: PreTrainedModel) -> None:
    """GGUF weights are dequantised on load; forget the quantizer so the model saves as plain safetensors."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> None:
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def load_prepared(model_dir: str | Path, trust_remote_code: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a folder written by `save_model` (the `prepare_model` rule's output)."""
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, trust_remote_code=trust_remote_code, use_safetensors=True
    )
    return model, load_tokenizer(model_dir, trust_remote_code)


def load_tokenizer(model_dir: str | Path, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The prepared model's tokenizer, with a pad token (the end-of-sequence token if it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def empty_model(model_dir: str | Path) -> PreTrainedModel:
    """The prepared model's architecture on the meta device: no memory until it is materialised."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Tiny randomly initialised models for tests and the smoke workflow (seconds, offline).

_TINY_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Question: Answer: 0123456789 + - * / = ? ! , . ; : "
    "instruction input output response user assistant system below describes a task write appropriate "
    "the a of and to in is it that for on with as was be by this are or from at an which"
)


def build_tokenizer(corpus: list[str] | None = None, vocab_size: int = 384) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer trained locally on `corpus` (every byte stays encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus or [_TINY_CORPUS], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|im_end|>", unk_token=None
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    fast.model_max_length = 1024
    return fast


TINY_KINDS = ("tiny-llama", "tiny-gpt2", "tiny-gpt-neox")
TINY_MODEL_TYPES = {"tiny-llama": "llama", "tiny-gpt2": "gpt2", "tiny-gpt-neox": "gpt_neox"}  # their config.model_type


def build_tiny_model(kind: str = "tiny-llama", seed: int = 0, **overrides: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised model of family `kind` (tiny-llama, tiny-gpt2, tiny-gpt-neox)."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
    )

    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    eos = tokenizer.eos_token_id
    torch.manual_seed(seed)
    dims = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, **overrides}
    if kind == "tiny-llama":
        config = LlamaConfig(
            vocab_size=vocab, hidden_size=dims["hidden"], intermediate_size=dims["intermediate"],
            num_hidden_layers=dims["layers"], num_attention_heads=dims["heads"],
            num_key_value_heads=dims["kv_heads"], max_position_embeddings=1024,
            bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config)
    elif kind == "tiny-gpt2":
        config = GPT2Config(
            vocab_size=vocab, n_embd=dims["hidden"], n_layer=dims["layers"], n_head=dims["heads"],
            n_positions=1024, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        )
        model = GPT2LMHeadModel(config)
    elif kind == "tiny-gpt-neox":
        config = GPTNeoXConfig(
            vocab_size=vocab, hidden_size=dims["hidden"], intermediate_size=dims["intermediate"],
            num_hidden_layers=dims["layers"], num_attention_heads=dims["heads"],
            max_position_embeddings=1024, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        )
        model = GPTNeoXForCausalLM(config)
    else:
        raise ValueError(f"unknown builtin model {kind!r}; known: {', '.join(TINY_KINDS)}")
    model.eval()
    return model, tokenizer

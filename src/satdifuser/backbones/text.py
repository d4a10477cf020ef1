"""Prompt embeddings from a pipeline's text encoder (optional ``transformers`` dependency)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from satdifuser.errors import CheckpointError, DependencyNotFoundError

TEXT_TOKENS = 77


def encode_prompt(text_encoder_dir: Path, prompt: str) -> Tensor:
    """Encode ``prompt`` with the CLIP text encoder in ``text_encoder_dir`` (tokenizer beside it).

    The encoder is loaded, used once and freed (the caller caches the embedding). The output is
    the last hidden state, padded to 77 tokens, as diffusers' Stable Diffusion pipelines use it.

    Returns:
        (1, 77, D) float32.

    Raises:
        DependencyNotFoundError: ``transformers`` is not installed.
        CheckpointError: the tokenizer folder is missing.
    """
    try:
        from transformers import AutoTokenizer, CLIPTextModel
    except ImportError:
        raise DependencyNotFoundError(
            f"encoding the prompt {prompt!r} with {text_encoder_dir} needs transformers; "
            'pip install "satdifuser[text]"'
        ) from None
    tokenizer_dir = text_encoder_dir.parent / "tokenizer"
    if not tokenizer_dir.is_dir():
        raise CheckpointError(
            f"missing tokenizer folder {tokenizer_dir} next to {text_encoder_dir}; copy the base "
            "model's tokenizer/ there"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoder = CLIPTextModel.from_pretrained(str(text_encoder_dir), use_safetensors=None)
    encoder.eval()
    ids = tokenizer(
        [prompt],
        padding="max_length",
        max_length=TEXT_TOKENS,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.inference_mode():
        hidden = encoder(ids)[0]
    return hidden.float().clone()


__all__ = ["TEXT_TOKENS", "encode_prompt"]

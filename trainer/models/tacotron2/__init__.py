"""torchaudio's Tacotron2 (Shen et al. 2018): the model (`model`) and its place in the registry (`network`)."""

from trainer.models.tacotron2.model import (  # noqa: F401 (the model's public names)
    DIAGONAL_BAND, NVIDIA_N_SYMBOLS, NVIDIA_SYMBOLS, PRESETS, Losses, PretrainedError, attention_score,
    build_model, compute_losses, decoder_steps, diagonality, guided_attention_weights, lengths_mask,
    model_kwargs, nvidia_to_torchaudio, read_pretrained, warm_start)

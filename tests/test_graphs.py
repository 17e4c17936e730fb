"""The graph-safe Tacotron2 forward (trainer.cuda.graphs.static_forward) against torchaudio's own.

The CUDA graph capture itself needs a GPU (bench/gpu_check.py runs it there); what can be
checked anywhere is that the forward it captures computes what torchaudio's does.
"""

from __future__ import annotations

import pytest
import torch

from trainer import config as config_mod
from trainer.cuda.graphs import graphs_wanted, static_forward
from trainer.data import collate
from trainer.models.tacotron2 import build_model, compute_losses


def tiny_model(seed: int = 0):
    config = config_mod.Config()
    config.model.preset = "tiny"
    torch.manual_seed(seed)
    return config, build_model(config, 40)


def batch(config, lengths, frames, seed=1, pad_to=None):
    generator = torch.Generator().manual_seed(seed)
    items = [(torch.randint(1, 40, (n,), generator=generator).tolist(),
              torch.randn(config.data.n_mels, f, generator=generator).numpy()) for n, f in zip(lengths, frames)]
    return collate(items, pad_to, config.model.frames_per_step)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_static_forward_equals_torchaudio(training):
    config, model = tiny_model()
    model.train(training)
    b = batch(config, [17, 11, 6], [40, 23, 31])
    torch.manual_seed(5)
    expected = model(b.tokens, b.text_lengths, b.mels, b.mel_lengths)
    torch.manual_seed(5)  # the same dropout masks, drawn in the same order
    got = static_forward(model, b.tokens, b.text_lengths, b.mels, b.mel_lengths)
    for name, want, have in zip(("mel", "postnet mel", "gate", "alignment"), expected, got):
        assert have.shape == want.shape, name
        torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-5, msg=name)


def test_gradients_equal_torchaudio():
    config, model = tiny_model()
    b = batch(config, [9, 7], [20, 14])
    grads = []
    for forward in (lambda *a: model(*a), lambda *a: static_forward(model, *a)):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        outputs = forward(b.tokens, b.text_lengths, b.mels, b.mel_lengths)
        compute_losses(outputs, b.mels, b.gates, b.text_lengths, b.mel_lengths, 1.0, 0.2, 8.0,
                       config.model.frames_per_step).total.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_padded_batches_attend_to_no_padding(monkeypatch):
    """On a batch padded to the run's longest text and mel, the static forward gives torchaudio's values.

    (Padding itself is what any Tacotron2 batch has: every clip but the longest is padded.)
    """
    import torchaudio.models.tacotron2 as ta

    monkeypatch.setattr(ta.F, "dropout", lambda x, *args, **kwargs: x)  # the prenet's dropout is always on
    config, model = tiny_model()
    model.eval()
    padded = batch(config, [12, 8, 5], [30, 18, 25], pad_to=(20, 46))
    assert padded.shape == (3, 20, 46)
    args = (padded.tokens, padded.text_lengths, padded.mels, padded.mel_lengths)
    with torch.no_grad():
        want = model(*args)
        have = static_forward(model, *args)
    for row, (n, f) in enumerate(zip(padded.text_lengths.tolist(), padded.mel_lengths.tolist())):
        for name, w, h in zip(("mel", "postnet mel"), want[:2], have[:2]):
            torch.testing.assert_close(h[row, :, :f], w[row, :, :f], rtol=1e-5, atol=1e-5, msg=name)
        torch.testing.assert_close(have[2][row, :f], want[2][row, :f], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(have[3][row, :f, :n], want[3][row, :f, :n], rtol=1e-5, atol=1e-5)
        assert float(have[3][row, :f, n:].abs().max()) == 0.0  # no attention on padding


def test_graphs_are_used_only_where_they_can_be():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert graphs_wanted("auto", cuda, "bf16", False) is None
    assert graphs_wanted("auto", cuda, "fp32", False) is None
    assert "off" in graphs_wanted("off", cuda, "bf16", False)
    assert "CUDA" in graphs_wanted("auto", cpu, "fp32", False)
    assert "fp16" in graphs_wanted("auto", cuda, "fp16", False)
    assert "DDP" in graphs_wanted("auto", cuda, "bf16", True)


def test_graphed_runs_leave_out_only_an_incomplete_last_batch():
    from trainer.data import next_batch, steps_for

    order = list(range(10))
    assert next_batch(order, 8, 4) == ([8, 9], 2)  # eager: the tail is a smaller batch
    assert next_batch(order, 8, 4, drop_tail=True) == ([], 2)  # graphed: it ends the epoch
    assert next_batch(order, 4, 4, drop_tail=True) == ([4, 5, 6, 7], 4)
    assert (steps_for(10, 4), steps_for(10, 4, drop_tail=True), steps_for(8, 4, drop_tail=True)) == (3, 2, 2)
    assert steps_for(10, 2, world_size=2, drop_tail=True) == 2


@pytest.mark.slow
def test_a_step_that_cannot_be_captured_is_trained_eagerly_and_says_so(tmp_path):
    """Where a GPU/driver/torch build refuses to capture, the run goes on without graphs (event warn)."""
    from conftest import tiny_config
    from trainer.loop import Trainer
    from trainer.rundir import create_run, read_metrics

    path = tiny_config(tmp_path)
    config = config_mod.load(path)
    run = create_run(tmp_path / "runs", "graphs", path.read_text())
    trainer = Trainer(run, config, log=lambda message: None)
    trainer.setup()
    trainer.model.train()

    class Refusing:
        captures, warmup_left, capture_failed, calls = 0, 0, False, 0

        def run(self, batch, key):
            self.calls += 1
            self.capture_failed = True
            raise RuntimeError("operation not permitted when stream is capturing")

    trainer.graphed, trainer.graphs_off = (refusing := Refusing()), None  # as on a GPU
    trainer.pad_to = trainer.train_set.max_shape()
    indices = list(range(trainer.batch_size))
    before = [p.detach().clone() for p in trainer.core.parameters()]
    trainer._train_step(trainer.train_set.batch(indices, trainer.pad_to))
    assert trainer.progress.interval_steps == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.core.parameters()))  # the step was applied
    assert "capture failed: RuntimeError" in trainer.graphs_off
    trainer._train_step(trainer.train_set.batch(indices, trainer.pad_to))
    assert refusing.calls == 1 and trainer.progress.interval_steps == 2  # no second try: eager from now on
    trainer.metrics.close()
    events = [r for r in read_metrics(run.metrics_path) if r["kind"] == "event"]
    assert [e["code"] for e in events] == ["cuda_graphs_off"] and events[0]["level"] == "warn"

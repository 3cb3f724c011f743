"""finetune.prefix_attention: the batched shared-prefix attention computes what SDPA computes."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _tiny_llama(seed: int = 0):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, target_modules=["q_proj", "k_proj", "v_proj"],
                                                             task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def _batch(prefix_len: int, suffix_lens: list[int], seed: int = 1):
    from finetune.train import Encoded

    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(1, 97, (prefix_len,), generator=g).tolist()
    out = []
    for n in suffix_lens:
        suffix = torch.randint(1, 97, (n,), generator=g).tolist()
        labels = [-100] * (prefix_len + n // 2) + suffix[n // 2:]
        out.append(Encoded(prefix + suffix, labels))
    return prefix, out


def _loss_and_grads(model, batch, prefix, impl: str):
    from finetune.train import batch_loss

    model.get_base_model().set_attn_implementation(impl)
    model.zero_grad()
    loss, n = batch_loss(model, batch, 0, "cpu", prefix)
    loss.backward()
    return float(loss), n, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("suffix_lens", [[5, 9, 3, 9], [7, 7], [12, 1, 4]])
def test_batched_prefix_attention_matches_sdpa(suffix_lens):
    """Same loss and gradients (LoRA weights and the embedding, through the prefix) with padded rows."""
    from finetune.prefix_attention import register

    model = _tiny_llama()
    model.get_base_model().get_input_embeddings().weight.requires_grad_(True)
    prefix, batch = _batch(11, suffix_lens)
    ref_loss, n1, ref = _loss_and_grads(model, batch, prefix, "sdpa")
    loss, n2, got = _loss_and_grads(model, batch, prefix, register())
    assert n1 == n2 > 0
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert set(got) == set(ref) and any("embed" in k for k in ref)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-6)


def test_batched_prefix_attention_falls_back_where_it_does_not_apply(monkeypatch):
    """A batch of one and suffixes over MAX_SUFFIX go to SDPA (same numbers, and SDPA really is called)."""
    import transformers.integrations.sdpa_attention as sdpa

    import finetune.prefix_attention as pa

    calls = []
    real = sdpa.sdpa_attention_forward

    def spy(*a, **k):
        if k.get("shared_prefix_len"):  # the suffix pass (the prefix runs alone, batch 1, in SDPA anyway)
            calls.append(a[1].shape[2])
        return real(*a, **k)

    monkeypatch.setattr(sdpa, "sdpa_attention_forward", spy)
    monkeypatch.setattr(pa, "MAX_SUFFIX", 6)
    model = _tiny_llama()
    prefix, batch = _batch(8, [9, 4])
    ref_loss, _, ref = _loss_and_grads(model, batch, prefix, "sdpa")
    calls.clear()
    loss, _, got = _loss_and_grads(model, batch, prefix, pa.register())
    assert calls and all(t == 9 for t in calls)  # suffix width 9 > 6: every layer's attention went to SDPA
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    prefix, batch = _batch(8, [5, 4])
    calls.clear()
    _loss_and_grads(model, batch, prefix, pa.register())
    assert not calls  # width 5: the batched path


def test_autocast_context_keeps_activations_in_the_base_dtype_and_grads_in_float32():
    """compute_context: with a bfloat16 base the LoRA layers see bfloat16 inputs (PEFT's float32 cast is off),
    the LoRA weights stay float32 and get float32 gradients; a float32 base gets no context at all."""
    import contextlib

    from finetune.train import compute_context

    model = _tiny_llama().to(torch.bfloat16)
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.data = p.data.float()
    seen = []
    lora_a = next(m for n, m in model.named_modules() if n.endswith("q_proj.lora_A.default"))
    lora_a.register_forward_hook(lambda m, inp, out: seen.append((inp[0].dtype, out.dtype)))
    ids = torch.randint(1, 97, (2, 7))
    with compute_context(model, "cpu", "bfloat16", True):
        out = model(input_ids=ids).logits
    out.float().sum().backward()
    assert seen and all(i == torch.bfloat16 and o == torch.bfloat16 for i, o in seen)
    assert lora_a.weight.dtype == torch.float32 and lora_a.weight.grad.dtype == torch.float32
    assert lora_a.weight.grad.abs().sum() > 0
    seen.clear()
    with compute_context(model, "cpu", "bfloat16", False):  # PEFT's own path: input cast to float32
        model(input_ids=ids)
    assert seen and all(i == torch.float32 for i, _ in seen)
    assert isinstance(compute_context(model, "cpu", "float32", True), contextlib.nullcontext)


def test_length_window_cuts_padding_and_keeps_every_example_once():
    import random

    from finetune.train import make_batches

    rng = random.Random(3)
    lengths = [rng.choice([60, 70, 80, 90, 400]) for _ in range(1000)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    small = make_batches(len(lengths), 16, 13, 0, lengths, 8)
    large = make_batches(len(lengths), 16, 13, 0, lengths, 64)
    for batches in (small, large):
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert padded(large) < padded(small)
    assert make_batches(len(lengths), 16, 13, 0, lengths) == small  # 8 is the default

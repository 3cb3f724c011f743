"""Attention over a prefix that every row of a batch shares (training with ``share_prefix``).

With ``share_prefix`` every micro-batch runs the system prompt once and each example's suffix on that
prefix's key/value cache, expanded to the batch. PyTorch's fused CPU attention then treats the expanded
prefix keys as B separate copies: it computes the suffix queries against them row by row, and in the backward
pass B separate prefix-key gradients that autograd sums afterwards. Here the queries of all rows (and all the
query heads of a key/value head) are stacked and meet the one copy of the prefix keys in a single large
matmul, and the row's own suffix keys in a batched one; one softmax runs over both parts.

Numerics: scores are computed and normalised in float32 (the query and keys are cast up for the two score
matmuls), the probabilities are cast back to the activations' dtype for the value matmuls, like PyTorch's
fused kernel accumulates in float32. Masks are the usual additive ones (``eager_mask``). Rows that do not
share a prefix (``shared_prefix_len`` absent or 0, or a batch of one), suffixes over ``MAX_SUFFIX`` tokens and
attention dropout go to SDPA unchanged.

Register it with :func:`register` and select it with ``config._attn_implementation = NAME``; the caller passes
``shared_prefix_len=P`` to the decoder's forward (transformers hands extra keyword arguments to attention).
"""
from __future__ import annotations

NAME = "mdi_shared_prefix"
# suffixes longer than this go to SDPA: the stacked scores grow with T x (P + T) and PyTorch's fused
# kernel, which never materialises them, wins on long rows. Chosen between measured widths, not tuned:
# batched was faster on micro-batches of width 57-89, mixed at 119, slower at 411 (docs/finetune.md)
MAX_SUFFIX = 160


def shared_prefix_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                            **kwargs):
    """transformers attention function; ``query`` (B, H, T, d), ``key``/``value`` (B, Hkv, P + T, d) whose
    first ``shared_prefix_len`` positions are the same in every row. Returns ((B, T, H, d), None)."""
    import torch

    P = int(kwargs.get("shared_prefix_len") or 0)
    B, H, T, d = query.shape
    if not P or B == 1 or T > MAX_SUFFIX or key.shape[2] != P + T or (dropout and module.training):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    Hkv = key.shape[1]
    g = H // Hkv  # query heads per key/value head, in repeat_kv's order: head = kv * g + j
    scale = scaling if scaling is not None else d ** -0.5
    dt = query.dtype
    with torch.autocast(device_type=query.device.type, enabled=False):
        q = (query.float() * scale).reshape(B, Hkv, g, T, d)
        # row 0 stands for every row: the gradient of the expanded cache sums over rows either way
        kp, vp = key[0, :, :P].float(), value[0, :, :P]                 # (Hkv, P, d)
        ks, vs = key[:, :, P:].float(), value[:, :, P:]                 # (B, Hkv, T, d)
        q_stacked = q.permute(1, 0, 2, 3, 4).reshape(Hkv, B * g * T, d)
        s_prefix = torch.matmul(q_stacked, kp.transpose(-1, -2)).view(Hkv, B, g, T, P).permute(1, 0, 2, 3, 4)
        s_own = torch.matmul(q, ks.unsqueeze(2).transpose(-1, -2))    # (B, Hkv, g, T, T)
        scores = torch.cat([s_prefix, s_own], dim=-1)
        if attention_mask is not None:
            scores = scores + attention_mask[..., : P + T].unsqueeze(2).float()   # (B, 1, 1, T, P + T)
        probs = torch.softmax(scores, dim=-1).to(dt)
        p_prefix = probs[..., :P].permute(1, 0, 2, 3, 4).reshape(Hkv, B * g * T, P)
        out = torch.matmul(p_prefix, vp).view(Hkv, B, g, T, d).permute(1, 0, 2, 3, 4)
        out = out + torch.matmul(probs[..., P:], vs.unsqueeze(2))
    return out.reshape(B, H, T, d).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make :data:`NAME` a transformers attention implementation (idempotent); returns the name."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import eager_mask

    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, eager_mask)
    return NAME

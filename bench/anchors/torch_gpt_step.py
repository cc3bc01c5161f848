#!/usr/bin/env python3
"""PyTorch eager anchor for bench_train_step: one AdamW step of a small GPT, best of --steps.

The model is the one nn::GPT builds with tie_weights=false and dropout 0: token and learned position
embeddings, pre-LayerNorm blocks (causal multi-head attention, then a 4x GELU(tanh) MLP), a final
LayerNorm and an untied bias-free head. A step is forward, mean cross-entropy over every position,
zero_grad, backward and AdamW(lr 3e-4). One step runs first (it allocates the optimizer state), then
--steps timed steps; the best one is reported. Output: one JSON line, e.g.
  {"anchor": "torch_gpt_step", "torch": "1.13.1", "vocab": 256, ..., "ms": 134.1, "tokens_per_s": 15270}
Run it with Debian's interpreter, /usr/bin/python3 (python3-torch; `make bench-deps`).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

CONFIG = {"vocab": 256, "ctx": 64, "d_model": 128, "n_layer": 4, "n_head": 4, "batch": 32,
          "threads": 2, "steps": 5}


class Attention(nn.Module):
    def __init__(self, d_model, n_head, ctx):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.register_buffer("future", torch.ones(ctx, ctx, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.n_head
        q, k, v = (z.reshape(b, t, self.n_head, hd).transpose(1, 2) for z in self.qkv(x).chunk(3, dim=-1))
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd))
        probs = torch.softmax(scores.masked_fill(self.future[:t, :t], float("-inf")), dim=-1)
        return self.out(torch.matmul(probs, v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d_model, n_head, ctx):
        super().__init__()
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head, ctx)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, 4 * d_model)
        self.down = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        x = x + self.attn(self.norm_attn(x))
        return x + self.down(F.gelu(self.up(self.norm_mlp(x)), approximate="tanh"))


class TinyGPT(nn.Module):
    def __init__(self, vocab, ctx, d_model, n_layer, n_head):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(ctx, d_model)
        self.blocks = nn.Sequential(*(Block(d_model, n_head, ctx) for _ in range(n_layer)))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, tokens):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.head(self.norm(self.blocks(self.tok(tokens) + self.pos(positions))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, value in CONFIG.items():
        parser.add_argument(f"--{key}", type=int, default=value)
    cfg = parser.parse_args()
    if cfg.d_model % cfg.n_head:
        parser.error("--d_model must be a multiple of --n_head")
    torch.manual_seed(0)
    torch.set_num_threads(cfg.threads)

    model = TinyGPT(cfg.vocab, cfg.ctx, cfg.d_model, cfg.n_layer, cfg.n_head).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    inputs = torch.randint(cfg.vocab, (cfg.batch, cfg.ctx))
    targets = torch.randint(cfg.vocab, (cfg.batch, cfg.ctx))

    def train_step():
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_step()  # warm-up: allocates AdamW's moments, as bench_train_step's first step does
    best = math.inf
    for _ in range(cfg.steps):
        start = time.perf_counter()
        train_step()
        best = min(best, time.perf_counter() - start)

    result = {"anchor": "torch_gpt_step", "torch": torch.__version__, **vars(cfg),
              "ms": round(best * 1e3, 2), "tokens_per_s": round(cfg.batch * cfg.ctx / best)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

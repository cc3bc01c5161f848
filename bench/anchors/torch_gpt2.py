#!/usr/bin/env python3
"""PyTorch eager anchor for bench_gpt2: GPT-2 (124M by default), one measurement per process.

The model is GPT-2 as nn::GPT builds it with tie_weights=true and dropout 0: token and learned
position embeddings, pre-LayerNorm blocks (causal multi-head attention with a fused qkv projection,
then a 4x GELU(tanh) MLP, biases everywhere), a final LayerNorm and the head tied to the token
embedding. Random weights (N(0, 0.02)). Modes, the same computation as bench_gpt2's:
  dpo       one DPO step (sigmoid loss, beta 0.1; log-probs by log_softmax + gather over the whole
            [2 * pairs, seq_len, vocab] logits, as a plain eager implementation does), grad clip 1.0,
            AdamW; the reference's log-probs are computed once before the steps, as DPOTrainer does
  generate  greedy decoding with a KV cache: `batch` prompts of prompt_len tokens, new_tokens each
  train     one pretraining step: forward, mean cross-entropy, zero_grad, backward, AdamW
One untimed warm-up step (it allocates AdamW's moments; its loss is first_loss), then the best of
--steps. Output: one JSON line, {"impl": "torch", "mode": ..., the configuration, "params": ...,
"ms": best, "peak_rss_MB": ..., "setup_rss_MB": ...}: this process's peak resident memory
(ru_maxrss, the interpreter and torch included), and that peak once the model (and reference) exist.
Run it with Debian's interpreter, /usr/bin/python3 (python3-torch; `make bench-deps`).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

CONFIG = {"vocab": 50257, "ctx": 1024, "d_model": 768, "n_layer": 12, "n_head": 12, "steps": 3,
          "pairs": 2, "seq_len": 256, "prompt_len": None, "batch": None, "new_tokens": 64, "threads": 2}
PROMPT_LEN = {"dpo": 64, "generate": 32, "train": 64}
BATCH = {"dpo": 8, "generate": 8, "train": 4}


class Attention(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x, past=None):
        b, t, d = x.shape
        hd = d // self.n_head
        q, k, v = (z.reshape(b, t, self.n_head, hd).transpose(1, 2) for z in self.c_attn(x).chunk(3, dim=-1))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        s = k.shape[2]
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd))
        future = torch.ones(t, s, dtype=torch.bool).triu(s - t + 1)  # query i sees keys up to s - t + i
        probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        return self.c_proj(torch.matmul(probs, v).transpose(1, 2).reshape(b, t, d)), (k, v)


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Attention(d, n_head)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x, past=None):
        a, kv = self.attn(self.ln_1(x), past)
        x = x + a
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")), kv


class GPT2(nn.Module):
    def __init__(self, vocab, ctx, d, n_layer, n_head):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, past=None):
        start = 0 if past is None else past[0][0].shape[2]
        x = self.wte(ids) + self.wpe(torch.arange(start, start + ids.shape[1]))
        kvs = []
        for i, block in enumerate(self.h):
            x, kv = block(x, None if past is None else past[i])
            kvs.append(kv)
        return self.ln_f(x) @ self.wte.weight.t(), kvs  # the tied head


def sequence_logprobs(model, ids, mask):
    """sum_t mask[t+1] * log softmax(logits[t])[ids[t+1]], per row."""
    logits, _ = model(ids)
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (logp * mask[:, 1:]).sum(-1)


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn, steps, result):
    result["setup_rss_MB"] = peak_rss_mb()
    result["first_loss"] = fn()  # warm-up
    best = math.inf
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["dpo", "generate", "train"])
    for key, value in CONFIG.items():
        parser.add_argument(f"--{key}", type=int, default=value)
    cfg = parser.parse_args()
    cfg.prompt_len = cfg.prompt_len or PROMPT_LEN[cfg.mode]
    cfg.batch = cfg.batch or BATCH[cfg.mode]
    longest = cfg.prompt_len + cfg.new_tokens if cfg.mode == "generate" else cfg.seq_len
    if longest > cfg.ctx:
        parser.error(f"{longest} tokens do not fit the context --ctx {cfg.ctx}")
    torch.manual_seed(0)
    torch.set_num_threads(cfg.threads)
    V = cfg.vocab
    model = GPT2(V, cfg.ctx, cfg.d_model, cfg.n_layer, cfg.n_head)
    used = {"dpo": ["pairs", "seq_len", "prompt_len"], "generate": ["batch", "prompt_len", "new_tokens"],
            "train": ["batch", "seq_len"]}[cfg.mode]
    result = {"impl": "torch", "torch": torch.__version__, "mode": cfg.mode, "threads": cfg.threads,
              "params": sum(p.numel() for p in model.parameters()),
              **{k: getattr(cfg, k) for k in ["vocab", "ctx", "d_model", "n_layer", "n_head", "steps"] + used}}

    if cfg.mode == "dpo":
        ref = GPT2(V, cfg.ctx, cfg.d_model, cfg.n_layer, cfg.n_head)
        ref.load_state_dict(model.state_dict())
        ref.eval().requires_grad_(False)
        model.train()
        rows = 2 * cfg.pairs  # chosen rows, then rejected rows
        ids = torch.randint(V - 1, (rows, cfg.seq_len))
        mask = torch.zeros(rows, cfg.seq_len)
        mask[:, cfg.prompt_len:] = 1
        ids[cfg.pairs:, :cfg.prompt_len] = ids[:cfg.pairs, :cfg.prompt_len]  # a pair shares its prompt
        with torch.no_grad():
            ref_logps = sequence_logprobs(ref, ids, mask)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.95), weight_decay=0.0)
        beta, n = 0.1, cfg.pairs

        def step():
            logps = sequence_logprobs(model, ids, mask)
            margin = (logps[:n] - ref_logps[:n]) - (logps[n:] - ref_logps[n:])
            loss = -F.logsigmoid(beta * margin).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            return loss.item()

        best = timed(step, cfg.steps, result)
        result["tokens_per_s"] = rows * cfg.seq_len / best
    elif cfg.mode == "generate":
        model.eval()
        prompts = torch.randint(V - 1, (cfg.batch, cfg.prompt_len))

        @torch.no_grad()
        def step():
            logits, past = model(prompts)
            out = []
            for i in range(cfg.new_tokens):
                token = logits[:, -1].argmax(-1, keepdim=True)
                out.append(token)
                if i + 1 < cfg.new_tokens:  # the last token needs no forward
                    logits, past = model(token, past)
            torch.cat(out, 1)

        best = timed(step, cfg.steps, result)
        result["generated_tokens"] = cfg.batch * cfg.new_tokens
        result["tokens_per_s"] = cfg.batch * cfg.new_tokens / best
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
        x = torch.randint(V, (cfg.batch, cfg.seq_len))
        y = torch.randint(V, (cfg.batch, cfg.seq_len))

        def step():
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()

        best = timed(step, cfg.steps, result)
        result["tokens_per_s"] = cfg.batch * cfg.seq_len / best
    result["ms"] = round(best * 1e3, 2)
    result["peak_rss_MB"] = peak_rss_mb()
    if result["first_loss"] is None:
        del result["first_loss"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()

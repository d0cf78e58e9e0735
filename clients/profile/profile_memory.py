#!/usr/bin/env python3
"""Measure LLM inference / training memory on a real GPU and write calibration case lines.

Runs where a GPU, torch and transformers are (not needed to build or test fleetplan). Cases come out
in the format of ../shared/calibration/README.md, so `fleetplan validate --cases OUT.jsonl` scores
the estimator against your own GPUs. The method mirrors the shared calibration: random weights built
from config.json directly on the GPU, peak statistics reset right before each call, gc +
empty_cache between points, default allocator settings.

Examples:
  python3 profile_memory.py --config models/llama.json --slug llama-3.1-8b \
      --phase prefill --batch 1 4 --prompt-tokens 512 2048 --out cases.jsonl
  python3 profile_memory.py --config models/qwen.json --slug qwen2.5-0.5b --phase generate \
      --batch 1 8 --prompt-tokens 512 --attn eager --out cases.jsonl
  python3 profile_memory.py --config models/qwen.json --slug qwen2.5-0.5b --phase train \
      --param-dtype float32 --autocast --batch 1 4 --prompt-tokens 512 2048 --out train.jsonl
"""
import argparse
import gc
import json
import os
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_config(path):
    with open(path) as f:
        cfg = json.load(f)
    for key in [k for k in cfg if k.startswith("_")]:
        del cfg[key]
    for key in ("torch_dtype", "transformers_version", "cache_implementation"):
        cfg.pop(key, None)
    return cfg


def build_model(cfg_dict, dtype, attn):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type = cfg_dict.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **cfg_dict)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
    return model


def reset(torch):
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def device_used(torch):
    free, total = torch.cuda.mem_get_info()
    return total - free


def cache_bytes(cache):
    total = 0
    storage = 0
    seen = set()
    for layer in getattr(cache, "layers", []):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if t is None or not hasattr(t, "nbytes"):
                continue
            total += t.nbytes
            s = t.untyped_storage()
            if s.data_ptr() not in seen:
                seen.add(s.data_ptr())
                storage += s.nbytes()
    return total, storage


def measure_inference(torch, model, args, batch, tokens, logits, base):
    vocab = model.config.get_text_config().vocab_size
    ids = torch.randint(0, vocab, (batch, tokens), device="cuda")
    reset(torch)
    before = torch.cuda.memory_allocated()
    measured = dict(base)
    out = None
    try:
        with torch.inference_mode():
            if args.phase == "prefill":
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1 if logits == "last" else 0)
                cache = out.past_key_values
                measured["logits_bytes"] = out.logits.nbytes
            else:
                out = model.generate(ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                     do_sample=False, num_beams=1, return_dict_in_generate=True)
                cache = out.past_key_values
        torch.cuda.synchronize()
        kv, storage = cache_bytes(cache)
        measured["kv_cache_bytes"] = kv
        if storage != kv:
            measured["kv_cache_storage_bytes"] = storage
        measured["device_used_bytes"] = device_used(torch)
        measured["allocated_after_bytes"] = torch.cuda.memory_allocated()
    except torch.cuda.OutOfMemoryError:
        measured["oom"] = True
    measured["allocated_before_bytes"] = before
    measured["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    measured["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
    del out
    return measured


def measure_training(torch, model, args, batch, tokens, base):
    vocab = model.config.get_text_config().vocab_size
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-5)
    else:
        opt = torch.optim.SGD(params, lr=1e-5, momentum=0)
    ids = torch.randint(0, vocab, (batch, tokens), device="cuda")
    measured = dict(base)
    peaks = {}

    def step(record):
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if args.autocast else torch.enable_grad()
        if record:
            torch.cuda.reset_peak_memory_stats()
        with ctx:
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        if record:
            peaks["forward"] = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        loss.backward()
        if record:
            peaks["backward"] = torch.cuda.max_memory_allocated()
            measured["gradient_bytes"] = sum(p.grad.nbytes for p in params if p.grad is not None)
            torch.cuda.reset_peak_memory_stats()
        opt.step()
        if record:
            peaks["optimizer_step"] = torch.cuda.max_memory_allocated()
        opt.zero_grad(set_to_none=True)

    try:
        reset(torch)
        step(False)
        measured["persistent_bytes"] = torch.cuda.memory_allocated()
        measured["optimizer_state_bytes"] = sum(
            t.nbytes for s in opt.state.values() for t in s.values()
            if torch.is_tensor(t) and t.is_cuda)
        step(True)
        phase = max(peaks, key=peaks.get)
        measured["peak_allocated_bytes"] = peaks[phase]
        measured["peak_phase"] = phase
        measured["device_used_bytes"] = device_used(torch)
    except torch.cuda.OutOfMemoryError:
        measured["oom"] = True
        measured["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    measured["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
    del opt
    return measured


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="Hugging Face config.json")
    p.add_argument("--slug", required=True, help="case id prefix, e.g. llama-3.1-8b")
    p.add_argument("--model-path", help="'model' value written into cases (default: --config)")
    p.add_argument("--phase", choices=["prefill", "generate", "train"], default="prefill")
    p.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    p.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--prompt-tokens", type=int, nargs="+", default=[512])
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--logits", choices=["last", "all"], default="last")
    p.add_argument("--param-dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.add_argument("--autocast", action="store_true", help="train: bf16 autocast")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--out", required=True, help="JSON-lines file to append cases to")
    args = p.parse_args()

    import torch
    import transformers

    if not torch.cuda.is_available():
        sys.exit("profile_memory.py: no CUDA GPU visible")
    cfg = load_config(args.config)
    train = args.phase == "train"
    dtype_name = args.param_dtype if train else args.dtype
    dtype = getattr(torch, dtype_name)
    model = build_model(dict(cfg), dtype, args.attn)
    if train:
        if args.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    weights = torch.cuda.memory_allocated()
    n_params = sum(p.numel() for p in model.parameters())
    props = torch.cuda.get_device_properties(0)
    total = torch.cuda.mem_get_info()[1]
    version = f"transformers {transformers.__version__}, torch {torch.__version__.split('+')[0]}"
    model_path = args.model_path or os.path.relpath(args.config, os.path.dirname(os.path.abspath(args.out)))
    with open(args.out, "a") as out:
        for batch in args.batch:
            for tokens in args.prompt_tokens:
                base = {"params": n_params, "weights_bytes": weights}
                case = {"model": model_path, "engine_version": version, "attn": args.attn,
                        "gpu": props.name, "gpu_total_bytes": total}
                if train:
                    regime = ("amp-bf16-" if args.autocast else f"{'bf16' if dtype_name == 'bfloat16' else 'fp32'}-")
                    regime += args.optimizer + ("-ckpt" if args.gradient_checkpointing else "")
                    case.update({"case": f"{args.slug}/train-{regime}/b{batch}-s{tokens}",
                                 "engine": "hf-transformers-train", "batch": batch, "seq_tokens": tokens,
                                 "training": {"param_dtype": dtype_name, "optimizer": args.optimizer,
                                              "gradient_checkpointing": args.gradient_checkpointing,
                                              **({"autocast_dtype": "bfloat16"} if args.autocast else {})}})
                    base["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
                    case["measured"] = measure_training(torch, model, args, batch, tokens, base)
                else:
                    suffix = "-full-logits" if args.logits == "all" and args.phase == "prefill" else ""
                    case.update({"case": f"{args.slug}/{args.attn}/{args.phase}/b{batch}-s{tokens}{suffix}",
                                 "engine": "hf-transformers", "dtype": dtype_name, "phase": args.phase,
                                 "batch": batch, "prompt_tokens": tokens,
                                 "new_tokens": args.new_tokens if args.phase == "generate" else 0,
                                 "logits": args.logits if args.phase == "prefill" else "last"})
                    case["measured"] = measure_inference(torch, model, args, batch, tokens, args.logits, base)
                out.write(json.dumps(case) + "\n")
                out.flush()
                log(f"{case['case']}: peak {case['measured']['peak_allocated_bytes'] / 2**30:.3f} GiB"
                    + (" (OOM)" if case["measured"].get("oom") else ""))


if __name__ == "__main__":
    main()

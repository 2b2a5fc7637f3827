"""Command-line flags shared by render.py and batch.py (the same as the C, Rust and Go examples)."""
import argparse

import distri


def parse(description, out_flag, out_default):
    p = argparse.ArgumentParser(description=description)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="model folder: start an embedded cluster")
    where.add_argument("--address", help="a running cluster, tcp://HOST:PORT (fake:// for a fake one)")
    p.add_argument("--keys", help="key folder of the running cluster (head.pub, client.key)")
    p.add_argument("--cpu", action="store_true", help="embedded cluster on CPU actors only")
    p.add_argument(out_flag, dest="out", default=out_default)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler")
    p.add_argument("--negative")
    p.add_argument("prompts", nargs="+", metavar="PROMPT")
    return p.parse_args()


def open_client(args):
    if args.model:
        print("starting an embedded cluster for", args.model, "...", flush=True)
        return distri.Client.local(args.model, gpus=0 if args.cpu else None)
    return distri.Client.connect(args.address, key_dir=args.keys)


def job_params(args, seed):
    return dict(negative_prompt=args.negative, width=args.size, height=args.size,
                steps=args.steps, seed=seed, sampler=args.sampler)

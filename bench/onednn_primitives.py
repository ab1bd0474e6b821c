#!/usr/bin/python3
"""oneDNN's own time per primitive kind in a training step, selab against PyTorch.

Runs `steps` warm-up and `steps` timed training steps of one bench model on each side with
ONEDNN_VERBOSE=1 (selab: bench/primitive-steps.ts; PyTorch: bench/torch_peer.py's model, step
and allocator settings), both under OMP_WAIT_POLICY=passive as `selab bench` runs them, and
prints the milliseconds per step of each primitive kind (convolutions split into depthwise and
the rest), as measured by oneDNN itself. Both sides run the same oneDNN build.

  /usr/bin/python3 bench/onednn_primitives.py [--model mobilenet] [--batch 32] [--steps 6]
"""
import argparse
import collections
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = "selab-primitives: timed steps follow"


def torch_side(model, batch, steps):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, HERE)
    import torch_peer

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    net = torch_peer.BUILDERS[model]().to(memory_format=torch.channels_last)
    size = torch_peer.INPUT_SIZE[model]
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(steps):
        step()
    print(MARKER, flush=True)
    for _ in range(steps):
        step()


def per_kind(output, steps):
    times = collections.defaultdict(float)
    timed = False
    for line in output.splitlines():
        if line.startswith(MARKER):
            timed = True
        fields = line.split(",")
        if not timed or len(fields) < 8 or fields[0] != "onednn_verbose" or fields[1] != "exec":
            continue
        kind = fields[3] + (" depthwise" if fields[-2].startswith("g") else "")
        if fields[3] == "convolution":
            kind += " " + fields[5]
        times[kind] += float(fields[-1]) / steps
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mobilenet")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", choices=["torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "torch":
        torch_side(args.model, args.batch, args.steps)
        return
    env = {
        **os.environ,
        "ONEDNN_VERBOSE": "1",
        "OMP_WAIT_POLICY": "passive",
        "OMP_NUM_THREADS": str(args.threads),
        "MALLOC_MMAP_THRESHOLD_": str(2**30),
        "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
        "MALLOC_TOP_PAD_": str(2**28),
    }
    root = os.path.dirname(HERE)
    sides = {
        "selab": ["node", "--import", "tsx", os.path.join(HERE, "primitive-steps.ts"), args.model, str(args.batch), str(args.steps)],
        "torch": [sys.executable, os.path.abspath(__file__), "--side", "torch", "--model", args.model, "--batch", str(args.batch), "--steps", str(args.steps)],
    }
    results = {}
    for side, command in sides.items():
        run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"{side} side failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
        results[side] = per_kind(run.stdout, args.steps)
    kinds = sorted(set(results["selab"]) | set(results["torch"]), key=lambda k: -results["selab"].get(k, 0))
    print(f"{args.model}, batch {args.batch}: oneDNN ms per training step, {args.steps} steps after {args.steps}")
    print(f"{'primitive':<42} {'selab':>8} {'torch':>8}")
    for kind in kinds:
        print(f"{kind:<42} {results['selab'].get(kind, 0):8.2f} {results['torch'].get(kind, 0):8.2f}")
    print(f"{'total':<42} {sum(results['selab'].values()):8.2f} {sum(results['torch'].values()):8.2f}")


if __name__ == "__main__":
    main()

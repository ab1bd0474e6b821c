#!/usr/bin/python3
"""PyTorch peer of `selab bench`: the same models, batch and step as selab, timed the same way.

Builds plain10 (+SE), VGG16+BN+SE and MobileNet v1 (+SE) with exactly the parameter counts selab
reports (Keras counting: BatchNorm running mean/variance included), runs them channels-last
with torch.set_num_threads(--threads), and prints one JSON object on stdout:
{"torch": version, "threads": n, "rows": [{"model", "phase", "batch", "imagesPerSecond", "params"}]}.

A training step is forward + cross-entropy + backward + Adam, as selab's runner takes it; an
inference step is a forward pass in eval mode without autograd. Each figure is the median of
--steps timed steps after --warmup untimed ones.

--device cuda runs the same on an NVIDIA GPU: fp32, channels-last, cudnn.benchmark on, each step
timed to torch.cuda.synchronize(). --tf32 off (the default) forbids TF32 in matmuls and
convolutions, the fp32 figure; on allows it (PyTorch's fast path on Ampere and later); both
measures each model twice. Rows then carry "device" and "tf32".
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

EXPECTED_PARAMS = {
    "plain10": 1_927_946,
    "plain10-se": 1_993_970,
    "vgg16-bn-se": 15_194_074,
    "mobilenet": 3_239_114,
    "mobilenet-se": 4_205_590,
}
INPUT_SIZE = {"plain10": 32, "plain10-se": 32, "vgg16-bn-se": 64, "mobilenet": 128, "mobilenet-se": 128}


class SE(nn.Module):
    """timm-style squeeze-excitation: avg pool, C -> C//r (ReLU) -> C, sigmoid gate."""

    def __init__(self, channels, ratio=8):
        super().__init__()
        reduced = max(1, channels // ratio)
        self.reduce = nn.Linear(channels, reduced)
        self.expand = nn.Linear(reduced, channels)

    def forward(self, x):
        s = x.mean((2, 3))
        s = torch.sigmoid(self.expand(F.relu(self.reduce(s))))
        return x * s[:, :, None, None]


def bn(channels):
    # Keras defaults: epsilon 1e-3, momentum 0.99 (PyTorch's momentum is 1 - Keras').
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class Head(nn.Module):
    def __init__(self, channels, classes=10):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


def plain10(se):
    layers, cin = [], 3
    for s, filters in enumerate((64, 128, 256)):
        for _ in range(3):
            layers += [nn.Conv2d(cin, filters, 3, padding=1), bn(filters), nn.ReLU(inplace=True)]
            if se:
                layers.append(SE(filters))
            cin = filters
        if s < 2:
            layers.append(nn.AvgPool2d(2))
    return nn.Sequential(*layers, Head(256))


def vgg16_bn_se():
    layers, cin = [], 3
    for convs, filters in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
        for _ in range(convs):
            layers += [nn.Conv2d(cin, filters, 3, padding=1), bn(filters), nn.ReLU(inplace=True), SE(filters)]
            cin = filters
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, Head(512))


MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet(se):
    # As Keras' MobileNet: SE (when asked) right after conv1 and each pointwise conv, before its BN;
    # stride-2 depthwise convolutions pad bottom/right by one, then run 'valid'.
    layers = [nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)]
    if se:
        layers.append(SE(32))
    layers += [bn(32), nn.ReLU6(inplace=True)]
    cin = 32
    for filters, stride in MOBILENET_BLOCKS:
        if stride == 2:
            layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(cin, cin, 3, stride=2, groups=cin, bias=False)]
        else:
            layers.append(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False))
        layers += [bn(cin), nn.ReLU6(inplace=True), nn.Conv2d(cin, filters, 1, bias=False)]
        if se:
            layers.append(SE(filters))
        layers += [bn(filters), nn.ReLU6(inplace=True)]
        cin = filters
    return nn.Sequential(*layers, Head(1024))


BUILDERS = {
    "plain10": lambda: plain10(False),
    "plain10-se": lambda: plain10(True),
    "vgg16-bn-se": vgg16_bn_se,
    "mobilenet": lambda: mobilenet(False),
    "mobilenet-se": lambda: mobilenet(True),
}


def keras_param_count(model):
    running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return sum(p.numel() for p in model.parameters()) + running


def median_seconds(fn, warmup, steps, sync=lambda: None):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def set_tf32(allowed):
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed


def bench(name, batch, phases, warmup, steps, device="cpu", tf32=None):
    torch.manual_seed(0)
    model = BUILDERS[name]()
    params = keras_param_count(model)
    if params != EXPECTED_PARAMS[name]:
        raise SystemExit(f"torch_peer: {name} has {params} parameters, expected {EXPECTED_PARAMS[name]}")
    model = model.to(device=device, memory_format=torch.channels_last)
    size = INPUT_SIZE[name]
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    extra = {} if device == "cpu" else {"device": device, "tf32": tf32}
    if device == "cuda":
        set_tf32(tf32)
    rows = []
    if "train" in phases:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

        t = median_seconds(train_step, warmup, steps, sync)
        rows.append({"model": name, "phase": "train", "batch": batch, "imagesPerSecond": batch / t, "params": params, **extra})
    if "infer" in phases:
        model.eval()

        def infer_step():
            with torch.inference_mode():
                model(x)

        t = median_seconds(infer_step, warmup, steps, sync)
        rows.append({"model": name, "phase": "infer", "batch": batch, "imagesPerSecond": batch / t, "params": params, **extra})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="plain10", help="comma-separated: " + ", ".join(BUILDERS))
    parser.add_argument("--batches", default="", help="comma-separated batch per model (default 32 each)")
    parser.add_argument("--phases", default="train,infer")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--tf32", default="off", choices=["off", "on", "both"], help="with --device cuda: TF32 in matmuls and convolutions")
    parser.add_argument("--check-params", action="store_true", help="only build the models and check their parameter counts")
    args = parser.parse_args()

    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in BUILDERS]
    if unknown:
        raise SystemExit(f"torch_peer: unknown model(s) {', '.join(unknown)}; expected {', '.join(BUILDERS)}")
    batches = [int(b) for b in args.batches.split(",") if b] or [32] * len(models)
    if len(batches) != len(models):
        raise SystemExit("torch_peer: --batches needs one batch size per model")
    torch.set_num_threads(args.threads)
    if args.check_params:
        counts = {m: keras_param_count(BUILDERS[m]()) for m in models}
        bad = {m: c for m, c in counts.items() if c != EXPECTED_PARAMS[m]}
        print(json.dumps({"params": counts}))
        sys.exit(1 if bad else 0)
    phases = set(args.phases.split(","))
    info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    tf32_modes = [None]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("torch_peer: --device cuda, but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        info.update(device=torch.cuda.get_device_name(0), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
        tf32_modes = {"off": [False], "on": [True], "both": [False, True]}[args.tf32]
    rows = []
    for tf32 in tf32_modes:
        for name, batch in zip(models, batches):
            rows += bench(name, batch, phases, args.warmup, args.steps, args.device, tf32)
    print(json.dumps({**info, "rows": rows}))


if __name__ == "__main__":
    main()

"""PyTorch's time for plain10's convolutions (channels-last, batch 128), for comparison with
bench/onednn-conv.ts and bench/onednn_conv_best.cc.
    /usr/bin/python3 bench/torch_conv.py [batch] [reps] [threads]
"""
import sys
import time

import torch

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
LAYERS = [(32, 3, 64, 1), (32, 64, 64, 2), (16, 64, 128, 1), (16, 128, 128, 2), (8, 128, 256, 1), (8, 256, 256, 2)]


def median_time(fn):
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return sorted(samples)[len(samples) // 2]


totals = {"fwd": 0.0, "bwd_data": 0.0, "bwd_weights": 0.0}
for size, cin, cout, count in LAYERS:
    conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(batch, cin, size, size).to(memory_format=torch.channels_last)
    dy = torch.randn(batch, cout, size, size).to(memory_format=torch.channels_last)
    w = conv.weight
    with torch.no_grad():
        fwd = median_time(lambda: conv(x))
    # aten's convolution_backward computes exactly the requested gradients.
    bwd_data = 0.0 if cin == 3 else median_time(
        lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]))
    bwd_weights = median_time(
        lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False]))
    flops = 2 * batch * size * size * cout * 9 * cin
    print(f"torch {size}x{size} {cin}->{cout}: fwd {fwd * 1e3:.1f} ms {flops / fwd / 1e9:.0f} GFLOPS | "
          f"bwd_data {bwd_data * 1e3:.1f} ms | bwd_weights {bwd_weights * 1e3:.1f} ms {flops / bwd_weights / 1e9:.0f} GFLOPS")
    totals["fwd"] += fwd * count
    totals["bwd_data"] += bwd_data * count
    totals["bwd_weights"] += bwd_weights * count
for k, v in totals.items():
    print(f"total torch {k}: {v * 1e3:.1f} ms per batch")

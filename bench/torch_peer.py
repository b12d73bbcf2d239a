#!/usr/bin/python3
"""PyTorch peer for bench/fp32_vs_pytorch.py and bench/peer_run.py: trains the same
architectures as muppet on the same Fashion-MNIST data, with the same batch size, optimiser,
learning-rate schedule, augmentation and thread count, in FP32 or under bf16 autocast, and
prints one JSON line per epoch (training seconds, and the test accuracy with --test).

Architectures mirror worker/models exactly: lenet5 (5x5 convs, first padded by 2, ReLU, 2x2 max
pools, 120-84-classes classifier) and resnet20 (3x3 stem to 16 channels, three stages of three
basic blocks at 16/32/64 channels, 1x1 conv + BN projection shortcuts, global average pool).
"""
import argparse
import gzip
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class LeNet5(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        layers, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for block in range(3):
                layers.append(BasicBlock(cin, width, 2 if block == 0 and stage > 0 else 1))
                cin = width
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {"lenet5": LeNet5, "resnet20": ResNet20}
CROP_PADDING = 4  # As muppet's loader: random crop from a 4-pixel black border, then flip.


def augment(batch, black, generator):
    """Random crop (black padding) and horizontal flip per image, as worker/data/loader.cc."""
    n, _, h, w = batch.shape
    padded = F.pad(batch, (CROP_PADDING,) * 4, value=black)
    dy = torch.randint(-CROP_PADDING, CROP_PADDING + 1, (n, 1), generator=generator)
    dx = torch.randint(-CROP_PADDING, CROP_PADDING + 1, (n, 1), generator=generator)
    flip = torch.rand((n, 1), generator=generator) < 0.5
    xs = torch.arange(w).expand(n, w)
    rows = torch.arange(h).expand(n, h) + dy + CROP_PADDING
    cols = torch.where(flip, w - 1 - xs, xs) + dx + CROP_PADDING
    out = padded[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def learning_rate(args, epoch):
    if args.lr_schedule == "cosine":
        return args.lr * (1 + math.cos(math.pi * epoch / args.epochs)) / 2
    return args.lr


def load(args, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(f"{args.data_dir}/{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(f"{args.data_dir}/{prefix}-labels-idx1-ubyte.gz")
    limit = args.train_limit if split == "train" else args.test_limit
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def evaluate(model, x, y, args, memory_format):
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        for first in range(0, len(y), args.batch_size):
            batch = x[first:first + args.batch_size].contiguous(memory_format=memory_format)
            correct += int((model(batch).argmax(1) == y[first:first + args.batch_size]).sum())
    model.train()
    return correct / len(y)


def framework_name(args):
    return ("pytorch-" + torch.__version__.split("a")[0]
            + ("-bf16" if args.bf16 else "") + ("-channels-last" if args.channels_last else ""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=0)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU)")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--test", action="store_true", help="test accuracy after each epoch")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x, y = load(args, "train")
    mean, std = x.mean(), x.std()  # The training set's, for both sets, as muppet.
    x = (x - mean) / std
    black = float(-mean / std)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=memory_format)
    if args.test:
        test_x, test_y = load(args, "test")
        test_x = (test_x - mean) / std

    model = MODELS[args.model](1, 10).to(memory_format=memory_format)
    optimiser = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                                weight_decay=args.weight_decay)
    model.train()
    for epoch in range(args.epochs):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(args, epoch)
        order = torch.randperm(len(y))
        start = time.perf_counter()
        for first in range(0, len(y), args.batch_size):
            index = order[first:first + args.batch_size]
            batch = x[index]
            if args.augment:
                batch = augment(batch, black, generator)
            batch = batch.contiguous(memory_format=memory_format)
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = F.cross_entropy(model(batch), y[index])
            loss.backward()
            optimiser.step()
        seconds = time.perf_counter() - start
        line = {"framework": framework_name(args), "model": args.model,
                "batch_size": args.batch_size, "threads": args.threads, "epoch": epoch,
                "images": len(y), "seconds": seconds, "images_per_second": len(y) / seconds,
                "learning_rate": learning_rate(args, epoch), "final_loss": float(loss)}
        if args.test:
            start = time.perf_counter()
            line["test_accuracy"] = evaluate(model, test_x, test_y, args, memory_format)
            line["test_seconds"] = time.perf_counter() - start
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch peer for bench/fp32_vs_pytorch.py: trains the same architectures as muppet on the
same Fashion-MNIST data, with the same batch size, optimiser and thread count, and prints one
JSON line per measured epoch.

Architectures mirror worker/models exactly: lenet5 (5x5 convs, first padded by 2, ReLU, 2x2 max
pools, 120-84-classes classifier) and resnet20 (3x3 stem to 16 channels, three stages of three
basic blocks at 16/32/64 channels, 1x1 conv + BN projection shortcuts, global average pool).
"""
import argparse
import gzip
import json
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = read_idx(f"{args.data_dir}/train-images-idx3-ubyte.gz")
    labels = read_idx(f"{args.data_dir}/train-labels-idx1-ubyte.gz")
    if args.train_limit:
        images, labels = images[:args.train_limit], labels[:args.train_limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - x.mean()) / x.std()
    y = torch.from_numpy(labels.astype(np.int64))
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=memory_format)

    model = MODELS[args.model](1, 10).to(memory_format=memory_format)
    optimiser = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(y))
        start = time.perf_counter()
        for first in range(0, len(y), args.batch_size):
            index = order[first:first + args.batch_size]
            batch = x[index].contiguous(memory_format=memory_format)
            optimiser.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(batch), y[index])
            loss.backward()
            optimiser.step()
        seconds = time.perf_counter() - start
        print(json.dumps({"framework": "pytorch-" + torch.__version__.split("a")[0]
                          + ("-channels-last" if args.channels_last else ""),
                          "model": args.model, "batch_size": args.batch_size,
                          "threads": args.threads, "epoch": epoch, "images": len(y),
                          "seconds": seconds, "images_per_second": len(y) / seconds,
                          "final_loss": float(loss)}), flush=True)


if __name__ == "__main__":
    main()

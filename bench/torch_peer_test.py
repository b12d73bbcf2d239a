"""The PyTorch peer trains on what muppet trains on: the same augmentation (worker/data/loader.cc)
and the same learning-rate schedule (worker/optim/lr_schedule.cc), checked against per-pixel and
closed-form references on random inputs."""
import math
import unittest

import torch

from bench import torch_peer


def augment_reference(batch, black, dy, dx, flip):
    """loader.cc's loop: output (y, x) reads input (y + dy, (flip ? w - 1 - x : x) + dx), black
    outside the image."""
    n, c, h, w = batch.shape
    out = torch.empty_like(batch)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                sy, sx = y + dy[i], (w - 1 - x if flip[i] else x) + dx[i]
                inside = 0 <= sy < h and 0 <= sx < w
                for j in range(c):
                    out[i, j, y, x] = batch[i, j, sy, sx] if inside else black
    return out


class AugmentTest(unittest.TestCase):
    def test_matches_the_loaders_crop_and_flip(self):
        torch.manual_seed(1)
        batch = torch.randn(24, 2, 9, 7)
        seed = 5
        # The draws augment() makes, in its order, from the same generator state.
        g = torch.Generator().manual_seed(seed)
        pad = torch_peer.CROP_PADDING
        dy = torch.randint(-pad, pad + 1, (24, 1), generator=g).flatten().tolist()
        dx = torch.randint(-pad, pad + 1, (24, 1), generator=g).flatten().tolist()
        flip = (torch.rand((24, 1), generator=g) < 0.5).flatten().tolist()
        self.assertTrue(any(flip) and not all(flip))
        self.assertGreater(len(set(dy)), 3)

        out = torch_peer.augment(batch, -1.5, torch.Generator().manual_seed(seed))
        self.assertTrue(torch.equal(out, augment_reference(batch, -1.5, dy, dx, flip)))

    def test_black_is_the_normalised_zero_byte(self):
        # An image shifted wholly out of its frame cannot happen (|shift| <= 4 < 7), so every
        # image keeps some of its own pixels and the border is exactly `black`.
        batch = torch.full((64, 1, 7, 7), 3.0)
        out = torch_peer.augment(batch, -0.25, torch.Generator().manual_seed(0))
        self.assertTrue(bool(((out == 3.0) | (out == -0.25)).all()))
        self.assertTrue(bool((out == 3.0).flatten(1).any(1).all()))


class LearningRateTest(unittest.TestCase):
    def test_cosine_is_muppets_per_epoch_formula(self):
        args = type("Args", (), {"lr": 0.1, "epochs": 10, "lr_schedule": "cosine"})()
        for epoch in range(10):
            expected = 0.1 * (1 + math.cos(math.pi * epoch / 10)) / 2
            self.assertAlmostEqual(torch_peer.learning_rate(args, epoch), expected, places=15)
        self.assertEqual(torch_peer.learning_rate(args, 0), 0.1)

    def test_constant(self):
        args = type("Args", (), {"lr": 0.05, "epochs": 3, "lr_schedule": "constant"})()
        self.assertEqual([torch_peer.learning_rate(args, e) for e in range(3)], [0.05] * 3)


if __name__ == "__main__":
    unittest.main()

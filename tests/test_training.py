"""Training as NAS-Bench-201 did it: schedule, determinism, checkpoint/resume, augmentation, look-up.

Tiny networks (C=4, N=1) on 256 CIFAR-10 images for 2 epochs (256 test images) keep every run to a
few seconds.
"""

import math

import numpy as np
import pytest
import torch

from knas_core.groundtruth import benchmark_lookup
from knas_core.training import (
    EpochResult,
    TrainConfig,
    TrainingCancelled,
    TrainResult,
    augment_generator,
    epoch_order,
    normalised_black,
    random_crop_flip,
    train_architecture,
)

from .conftest import ARCH, SMALL

OTHER_ARCH = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
CONFIG = TrainConfig(epochs=2, batch_size=64, train_subset=256, test_subset=256, device="cpu",
                     checkpoint_every_steps=0)
STEPS = 256 // 64  # optimisation steps per epoch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a small shared CPU, two threads spin against each other and a tiny
    run takes 20x longer. Every run in this module uses the same count, so results stay comparable
    (float sums, hence losses, depend on the thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(space, config=CONFIG, arch=ARCH, **kwargs) -> TrainResult:
    return train_architecture(arch, "cifar10", config, space=space, model_options=SMALL, **kwargs)


def numbers(result: TrainResult) -> list[tuple[float, ...]]:
    """Everything in the history except the wall time."""
    return [(e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr) for e in result.epochs]


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_run(a: TrainResult, b: TrainResult, path_a=None, path_b=None) -> None:
    assert len(a.epochs) == len(b.epochs)
    for x, y in zip(numbers(a), numbers(b)):
        assert x == pytest.approx(y, abs=1e-6)
    if path_a is not None:
        wa, wb = weights(path_a), weights(path_b)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(space, tmp_path_factory):
    """An uninterrupted 2-epoch run, its checkpoint and the epochs reported to ``on_epoch``."""
    path = tmp_path_factory.mktemp("reference") / "run.pt"
    reported: list[EpochResult] = []
    result = run(space, checkpoint_path=path, on_epoch=reported.append)
    return result, path, reported


def test_history_shape_ranges_and_learning(reference):
    result, path, reported = reference
    assert [e.epoch for e in result.epochs] == [1, 2] and reported == result.epochs
    assert result.arch == ARCH and result.dataset == "cifar10" and result.device == "cpu"
    for e in result.epochs:
        assert all(math.isfinite(v) for v in (e.train_loss, e.test_loss, e.seconds))
        assert 0.0 <= e.train_acc <= 100.0 and 0.0 <= e.test_acc <= 100.0 and e.seconds > 0
    assert result.final_test_acc == result.epochs[-1].test_acc
    assert result.seconds == pytest.approx(sum(e.seconds for e in result.epochs))
    # It learns: the second epoch's mean loss is below the first's and below chance, ln(10).
    assert result.epochs[1].train_loss < result.epochs[0].train_loss < math.log(10) + 0.1
    assert result.epochs[1].train_loss < math.log(10)
    record = result.to_dict()
    assert record["epochs"][0]["epoch"] == 1 and record["final_test_acc"] == result.final_test_acc
    # The checkpoint directory holds only the final file (temporary files were renamed away).
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_cosine_schedule_per_step(reference):
    result, _, _ = reference
    # T_max = 2 epochs * 4 steps: half-way the cosine is at lr/2, at the end at 0.
    assert result.epochs[0].lr == pytest.approx(0.05, abs=1e-9)
    assert result.epochs[1].lr == pytest.approx(0.0, abs=1e-9)


def test_same_seed_same_run(space, reference, tmp_path):
    result, path, _ = reference
    again = run(space, checkpoint_path=tmp_path / "again.pt")
    assert numbers(again) == numbers(result)
    assert_same_run(result, again, path, tmp_path / "again.pt")


def test_cancel_mid_epoch_then_resume_matches_uninterrupted(space, reference, tmp_path):
    result, ref_path, _ = reference
    path = tmp_path / "run.pt"
    calls = 0

    def stop_in_epoch_two() -> bool:
        nonlocal calls
        calls += 1
        return calls == STEPS + 3  # polled before each step: 2 steps of epoch 2 are done

    first: list[EpochResult] = []
    with pytest.raises(TrainingCancelled) as info:
        run(space, checkpoint_path=path, should_stop=stop_in_epoch_two, on_epoch=first.append)
    assert (info.value.epoch, info.value.step) == (1, 2) and info.value.checkpoint_path == path
    assert [e.epoch for e in first] == [1] and path.exists()
    second: list[EpochResult] = []
    resumed = run(space, checkpoint_path=path, on_epoch=second.append)
    assert [e.epoch for e in second] == [2]  # epoch 1 is not reported twice
    assert_same_run(result, resumed, ref_path, path)


def test_crash_resumes_from_the_last_mid_epoch_checkpoint(space, reference, tmp_path):
    result, ref_path, _ = reference
    path = tmp_path / "run.pt"
    config = CONFIG.replace(checkpoint_every_steps=2)
    calls = 0

    def crash() -> bool:
        nonlocal calls
        calls += 1
        if calls == 4:  # 3 steps of epoch 1 done; the last checkpoint was after step 2
            raise RuntimeError("worker killed")
        return False

    with pytest.raises(RuntimeError, match="killed"):
        run(space, config, checkpoint_path=path, should_stop=crash)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert (saved["progress"]["epoch"], saved["progress"]["step"]) == (0, 2) and saved["history"] == []
    # Resuming with another checkpoint interval is allowed: it does not change the result.
    resumed = run(space, CONFIG, checkpoint_path=path)
    assert_same_run(result, resumed, ref_path, path)


def test_finished_checkpoint_returns_the_history_without_training(space, reference):
    result, path, _ = reference
    reported: list[EpochResult] = []
    again = run(space, checkpoint_path=path, on_epoch=reported.append,
                should_stop=lambda: pytest.fail("a finished run must not train again"))
    assert reported == [] and numbers(again) == numbers(result)


def test_checkpoint_of_another_run_is_rejected(space, reference):
    _, path, _ = reference
    with pytest.raises(ValueError, match="arch"):
        run(space, arch=OTHER_ARCH, checkpoint_path=path)
    with pytest.raises(ValueError, match="lr"):
        run(space, CONFIG.replace(lr=0.05), checkpoint_path=path)
    with pytest.raises(ValueError, match="model_options"):
        train_architecture(ARCH, "cifar10", CONFIG, space=space, model_options={"C": 8, "N": 1},
                           checkpoint_path=path)


def test_unreadable_checkpoint_is_a_value_error(space, tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        run(space, checkpoint_path=path)


def test_config_validation(space):
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="train_subset"):
        TrainConfig(train_subset=0)
    with pytest.raises(ValueError, match="test_subset"):
        TrainConfig(test_subset=-1)
    with pytest.raises(ValueError, match="exceeds"):
        run(space, TrainConfig(train_subset=10**6, device="cpu"))
    defaults = TrainConfig()
    assert (defaults.epochs, defaults.batch_size, defaults.lr, defaults.momentum, defaults.nesterov,
            defaults.weight_decay) == (12, 256, 0.1, 0.9, True, 5e-4)


def test_synthetic_imagenet16_trains_with_16px_images(space):
    config = TrainConfig(epochs=1, batch_size=32, train_subset=64, test_subset=32, device="cpu")
    result = train_architecture(ARCH, "ImageNet16-120", config, space=space, model_options=SMALL)
    assert result.dataset == "imagenet16-120" and len(result.epochs) == 1
    assert math.isfinite(result.epochs[0].test_loss) and 0 <= result.epochs[0].test_acc <= 100


def test_random_crop_flip_keeps_shapes_and_moves_pixels():
    x = torch.randn(16, 3, 32, 32)
    a = random_crop_flip(x, augment_generator(0, 0, 0), fill=normalised_black("cifar10"))
    b = random_crop_flip(x, augment_generator(0, 0, 0), fill=normalised_black("cifar10"))
    c = random_crop_flip(x, augment_generator(0, 0, 1), fill=normalised_black("cifar10"))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    small = torch.randn(4, 3, 16, 16)
    assert random_crop_flip(small, augment_generator(0, 0, 0)).shape == small.shape


def test_random_crop_flip_is_a_padded_shifted_window():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(3)
    out = random_crop_flip(x, gen, padding=2, fill=-1.0)
    # Reproduce the same draws and build the expected images with plain slicing.
    gen = torch.Generator().manual_seed(3)
    offsets = torch.randint(0, 5, (2, 2), generator=gen)
    flips = torch.rand(2, generator=gen) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)
    for i in range(2):
        r, c = offsets[i].tolist()
        expected = padded[i, :, r:r + 8, c:c + 8]
        expected = expected.flip(-1) if flips[i] else expected
        assert torch.equal(out[i], expected)


def test_epoch_order_is_a_seeded_permutation():
    a, b, c = epoch_order(0, 1, 100), epoch_order(0, 1, 100), epoch_order(0, 2, 100)
    assert np.array_equal(np.sort(a), np.arange(100))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_normalised_black_is_zero_pixels_after_normalisation(cifar10):
    black = normalised_black("cifar10")
    x, _ = cifar10.take(np.array([0]))
    # A zero pixel is the darkest value: no normalised image goes below it in any channel.
    assert black.shape == (3,) and bool((black <= x.amin(dim=(0, 2, 3)) + 1e-6).all())


def test_benchmark_lookup_reads_the_table(truth):
    got = benchmark_lookup(truth, 1, "cifar10")
    row = truth.frame.loc[1]
    assert got["valid_12ep"] == pytest.approx(row["cifar10_valid_acc_12ep"])
    assert got["test_200ep"] == pytest.approx(row["cifar10_test_acc"])
    expected = 100.0 * float(np.mean(truth.frame["cifar10_test_acc"] <= row["cifar10_test_acc"]))
    assert got["percentile"] == pytest.approx(expected) and 0 < got["percentile"] <= 100
    best = int(truth.frame["cifar10_test_acc"].idxmax())
    assert benchmark_lookup(truth, best, "CIFAR10")["percentile"] == 100.0
    with pytest.raises(ValueError, match="not in the ground-truth table"):
        benchmark_lookup(truth, 10**6, "cifar10")

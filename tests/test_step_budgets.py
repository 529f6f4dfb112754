"""Step budgets: what one training step of each reference network asks of a GPU, counted exactly on the simulated
device (tests/stepbudgets.py, in a process of its own). A change that adds a launch, a sync or a copy fails here;
one that removes some fails too, until the ceiling below is lowered to the new count in the same commit (the
table in benchmarks/README.md says what each count was and why it moved)."""

import pytest

from minidl import backend
from tests.simulatedprocess import simulatedCounts

# Launches rose by 12 to 20 with #24's no-sync step (the device guard's check, any and argmax per dtype group, the
# range checks' min, max and record, CrossEntropy's error (in float64) and scale on the device, the Embedder's sort
# and gather): the price of 0 syncs, until Reduction (#24, deliverable 1) fuses them. Counted on the merge of
# devicerng into the split optimizer (#29): 1215, 558, 318, 275 launches before.
# Reduction (#24 deliverable 1): LayerNorm's statistics and gradient sums as 5 Reductions per layer and step instead
# of CuPy's mean, var and sums with their casts and temporaries (transformer 287 -> 191); the guard's isfinite,
# any, argmax and cast as 3 Reductions per dtype group (each network 1 fewer). One more each with Adam's bias
# corrections computed on the device once per step for the true step count (#24: a step the guard skipped no longer
# shifts the steps after it before the host reads the guard). #24's fewer launches (branch launches): resnet18
# 1231 -> 381, the residual CNN 574 -> 195: BatchNorm in 6 launches a layer (was 45), Conv2D in 6 on a GPU (was 7 to
# 11: no flipped weights, no batch-inside-columns copies, ∂W summed into W.grad by a Reduction), Add in one launch
# (was a copy and an add). #24's normreduce: BatchNorm in 4 launches a layer on Reductions where a block per map runs
# enough threads (15 of resnet18's 20 layers; the five of 64 maps at 32x32 keep 6), Linear's bias gradient through
# sumInto (one launch, was a sum and an add): resnet18 381 -> 350, residual 195 -> 176, LSTM 338 -> 337,
# transformer 192 -> 187. A train pass no longer copies the running statistics before it (BatchNorm's forward
# kernel keeps those it replaces, for a pass refused halfway): resnet18 350 -> 310, residual 176 -> 158.
# The simulated device now counts CuPy's batched matmul as CuPy 14 runs it (copies of operands not C-contiguous,
# pointer arrays where the weights are broadcast over the batch, float16 cast to float32 and back): the products
# above would have been resnet18 590, residual 284, LSTM 337, transformer 199 launches. minidl's own products
# (minidl.backend.products: one cuBLAS launch each, transposes read in place, ∂W accumulated by the product) give
# resnet18 309, residual 157, LSTM 336, transformer 178. CuPy's stack and concatenate counted as CuPy runs them too
# (a copy per array up to 8): attention's backward writes ∂q, ∂k and ∂v into one buffer instead of stacking them
# (transformer 182 -> 176). The LSTM's ∂b_ih and ∂b_hh, both Σ ∂gates, are summed once, and its step kernel adds
# the biases (no bᵢₕ + bₕₕ, no pass over the input projections), and ∂input is the first direction's product, not
# added to zeros: LSTM 336 -> 331. Attention's backward sums Σ_j ∂P P by one Reduction (was a product and a sum):
# transformer 176 -> 174. CrossEntropy's error in five kernels (the rows' maxima and sums of exponentials, each
# row's loss and weight, their two sums, the mean) instead of 25 array operations, its labels and the accumulated
# error no longer copied: every network 22 fewer (resnet18 309 -> 287, residual 157 -> 135, LSTM 331 -> 309,
# transformer 174 -> 152). The cost's accumulator adds error x samples by one kernel (was a multiply and an add):
# each 1 fewer. A graph's first convolution no longer computes ∂x for the images (no parent takes a gradient:
# Graph.backward's ``_passing``): resnet18 286 -> 284, residual 134 -> 132.
BUDGETS = {  # per step: kernel launches (products included), host syncs, host-to-device copies, of them pageable
    "resnet18": {"launches": 284, "syncs": 0, "hostToDevice": 0, "pageableCopies": 0, "hostRandomDraws": 0},
    "residual": {"launches": 132, "syncs": 0, "hostToDevice": 0, "pageableCopies": 0, "hostRandomDraws": 0},
    "lstm": {"launches": 308, "syncs": 0, "hostToDevice": 2, "pageableCopies": 2, "hostRandomDraws": 0},
    "transformer": {"launches": 151, "syncs": 0, "hostToDevice": 2, "pageableCopies": 2, "hostRandomDraws": 0},
}


@pytest.fixture(scope="module")
def counts():
    if backend.name == "simulated":
        pytest.skip("the NumPy run of the suite counts the budgets (in a simulated-device process of its own)")
    return simulatedCounts("tests.stepbudgets", timeout=1200)


@pytest.mark.parametrize("network", sorted(BUDGETS))
def test_a_training_step_keeps_its_budget(counts, network):
    budget, counted = BUDGETS[network], counts[network]
    moved = {key: (counted[key], ceiling) for key, ceiling in budget.items() if counted[key] != ceiling}
    assert not moved, (f"{network}: (counted, budget) {moved}: a count above its budget is a regression; one below "
                       f"it lowers the budget in tests/test_step_budgets.py and the table in benchmarks/README.md")


# Replayed (#25): the step as training takes it, captured as a CUDA graph. The host launches the graph once, copies
# the batch's data and labels into the graph's inputs and the step's error out of it (three launches), and copies
# the live values (the step count, the rate, the random draws' counters) in one pinned copy; the text task's windows
# still arrive as two pageable copies, before the graph. (resnet18's replay is not counted here: the residual CNN shows
# the same, and four more simulated steps of resnet18 take two minutes; `minidl profile --model resnet18` shows it.)
REPLAY_BUDGETS = {
    "residual": {"graphLaunches": 1, "hostLaunches": 3, "syncs": 0, "hostToDevice": 1, "pageableCopies": 0},
    "lstm": {"graphLaunches": 1, "hostLaunches": 3, "syncs": 0, "hostToDevice": 3, "pageableCopies": 2},
    "transformer": {"graphLaunches": 1, "hostLaunches": 3, "syncs": 0, "hostToDevice": 3, "pageableCopies": 2},
}


@pytest.mark.parametrize("network", sorted(REPLAY_BUDGETS))
def test_a_replayed_step_is_one_graph_of_the_steps_kernels(counts, network):
    """The graph holds every kernel of the ordinary step (its launches run on the device as nodes of the graph),
    and the host does only what the budget says: its predicted time falls to a graph launch and three launches."""
    replay, ordinary = counts[network]["replay"], counts[network]
    budget = REPLAY_BUDGETS[network]
    moved = {key: (replay[key], ceiling) for key, ceiling in budget.items() if replay[key] != ceiling}
    assert not moved, f"{network}: (counted, budget) {moved}"
    assert replay["graphNodes"] == ordinary["launches"] == replay["launches"] - replay["hostLaunches"]
    assert replay["model"]["hostSeconds"] < ordinary["model"]["hostSeconds"] / 20


def test_every_large_launch_of_resnet18_runs_enough_threads(counts):
    """On the simulated trace of a resnet18 step, every launch over a tensor of at least 2^20 elements runs at
    least 2^16 threads (no thread walks a plane or a long axis alone)."""
    narrow = counts["resnet18"]["narrowLaunches"]
    assert not narrow, f"(kernel, threads, elements of its largest tensor): {narrow}"

"""The order the full suite runs in on two workers (issue 29 item 4: the full suite under 15 minutes
on 2 cores): the files of the slowest tests first, longest first, each file's tests kept together
in pytest's order (its module fixtures set up once), the other files after them in their order.

Why: `pytest -n 2` runs the tests in collection order, so a 500-s test collected late starts when
the rest is nearly done and one worker waits for it. With the long ones first, the short ones fill
in at the end; `--dist worksteal` (tools/test) then hands either worker the other's unstarted
tests, where xdist's default `load` would give one worker the first 251 tests, all long ones.
tools/sim_xdist.py compares the schedules on a run's --durations.

The figures are seconds of each test's call phase in CI's `tools/test` (its --durations=30); a test
renamed or gone only loses its place (tests/package/test_suite_order.py checks that each still
exists)."""
from __future__ import annotations

SLOWEST = {
    "tests/cli/test_readme_pretrained.py::test_pretrained_weights_commands_run_as_written": 506,
    "tests/backends/test_backends_without_tf.py::"
    "test_finetune_freeze_precise_bn_resume_and_mirrored[jax]": 228,
    "tests/explore/test_explore_auth.py::"
    "test_a_ray_start_head_with_token_auth_is_joined_with_the_token_or_refused_quickly": 120,
    "tests/backends/test_backends_without_tf.py::test_digits_train_to_the_readme_accuracy[torch]": 111,
    "tests/train/test_train_bn.py::test_readme_command_classifies_fresh_colour_images[false]": 97,
    "tests/analysis/test_memory_jax.py::test_training_step_memory_against_xla_on_jax": 82,
    "tests/importers/test_import.py::test_keras_inception_resnet_v2_round_trip": 81,
    "tests/backends/test_references.py::test_torch_references_params_and_macs": 77,
    "tests/importers/test_keras_app_weights.py::"
    "test_keras_applications_weights_both_formats_into_aux_model_through_cli[inception_resnet_v2]": 53,
}


def file_of(nodeid: str) -> str:
    """The test file of a pytest node id ('tests/a/test_b.py::test_c[x]' -> 'tests/a/test_b.py')."""
    return nodeid.split("::", 1)[0]


def longest_files_first(nodeids: list[str], slowest: dict[str, float] = SLOWEST) -> list[str]:
    """`nodeids` (collection order) with the files of `slowest`'s tests first, the file holding the
    longest test first; within a file, and among the files with none of them, the order is kept."""
    longest: dict[str, float] = {}
    for n in nodeids:
        longest[file_of(n)] = max(longest.get(file_of(n), 0.0), slowest.get(n, 0.0))
    return sorted(nodeids, key=lambda n: -longest[file_of(n)])  # stable

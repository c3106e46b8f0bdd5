#!/usr/bin/env python3
"""The nested-virtualization smoke set of `make test`: one test VM (scripts/with-kvm), the few
things only KVM can show. kiln-vmm boots kiln.elf and a static hello; an HTTP server answers
through virtio-net; snapshot, restore, first byte; `kiln run --rm hello`; one scale-to-zero wake
through kilnd. Everything else under KVM is in `make test-full` (label `full`)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "boot"), os.path.join(HERE, "e2e")]

SMOKE = [
    "test_boot.KilnVmmBoot.test_boots_prints_a_line_and_exits_zero",
    "test_apps.AppsUnderKilnVmm.test_without_an_app_the_kernel_says_hello",
    "test_apps.AppsUnderKilnVmm.test_strace_logs_every_call",  # a static hello, every call logged
    "test_net.Http.test_hello_and_keep_alive",
    "test_snapshot.SnapshotRestore.test_idle_c_server_restored_twice_after_the_original_is_gone",
    "test_instances.RunAttached.test_run_prints_the_console_and_exits_with_the_applications_status",
    "test_services.ScaleToZero.test_first_request_wakes_it_and_it_returns_to_standby",
]

if __name__ == "__main__":
    # Some suites open files relative to their own folder; each test runs from the boot folder.
    os.chdir(os.path.join(HERE, "boot"))
    suite = unittest.defaultTestLoader.loadTestsFromNames(SMOKE)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() and result.testsRun == len(SMOKE) else 1)

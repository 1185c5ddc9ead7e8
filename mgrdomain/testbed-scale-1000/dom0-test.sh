# mgrdomain/testbed-scale/dom0-test.sh, with /test/scale-full (build.sh).
# Sourced by dom0's init with testlib.sh loaded.
. /test/scale.sh

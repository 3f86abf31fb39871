#!/usr/bin/env bash
# Build and run otwatch for aarch64 (Debian bookworm arm64, the base of 64-bit
# Raspberry Pi OS) under qemu-user emulation, and compare its output with the
# same tree built natively on this machine.
#
#     sudo bash bench/aarch64.sh            # everything below, end to end
#
# Not run by the test suite.  Needs root, Debian's apt (for qemu-user-static,
# debootstrap, binfmt-support), the Debian mirror and PyPI.  Idempotent: the
# arm64 root is bootstrapped once and reused; venvs and outputs are redone.
#
#   1. qemu-aarch64 registered in binfmt_misc (with the F flag, so it works
#      inside a chroot without copying the emulator in);
#   2. debootstrap --arch=arm64 bookworm into $ROOT (skipped when it exists);
#   3. in the chroot: python3, python3-venv, python3-dev, gcc; a clean copy
#      of the tree (git archive HEAD); a venv; OTWATCH_REQUIRE_EXTENSIONS=1
#      pip install . (timed, peak RSS of the biggest process: cc1 under qemu);
#      `otwatch version` must say compiled; `otwatch analyze --no-inventory
#      --json` on the three shipped captures, compiled and pure
#      (OTWATCH_NO_EXTENSIONS=1), compared byte for byte with the same
#      commands on a native x86 venv built from the same archive;
#   4. no compiler: a second venv, CC=/bin/false pip install -v . must still
#      succeed and `otwatch version` say pure, with the reason.
#
# Timings are qemu-user timings on this host: they say nothing about a Pi.
#
# Environment: AARCH64_WORK (default /work/aarch64) holds the root, the
# native venv and the logs; MIRROR overrides the Debian mirror (default: the
# first one in this machine's apt sources); SKIP_TESTS=0 also runs
# `pytest tests/ext -q` and bench/smoke.py in the chroot (slow).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${AARCH64_WORK:-/work/aarch64}
ROOT=$WORK/root
OUT=$WORK/out
NATIVE=$WORK/x86
SKIP_TESTS=${SKIP_TESTS:-1}
NICE="nice -n 10"
CAPTURES="pcaps/demo-plant.pcap pcaps/opcua-security.pcap pcaps/protocol-corners.pcap.gz"

log() { printf '\n== %s\n' "$*"; }
die() { printf 'aarch64.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (binfmt_misc, debootstrap, chroot)"

mkdir -p "$WORK" "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt "$OUT"/*.log
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
say() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

# ---------------------------------------------------------------- 1. binfmt
log "1. qemu-aarch64 in binfmt_misc"
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static debootstrap binfmt-support
fi
BINFMT=/proc/sys/fs/binfmt_misc
[ -e $BINFMT/register ] || mount -t binfmt_misc binfmt_misc $BINFMT
if [ ! -e $BINFMT/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
if [ ! -e $BINFMT/qemu-aarch64 ]; then
    # by hand; F = the kernel opens the interpreter now, so it works in a chroot
    echo ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' >$BINFMT/register
fi
grep -q '^flags:.*F' $BINFMT/qemu-aarch64 || die "qemu-aarch64 is registered without the F flag; the chroot cannot find the emulator"
cat $BINFMT/qemu-aarch64
QEMU_VERSION=$(qemu-aarch64-static --version | head -1)

# ------------------------------------------------------------ 2. debootstrap
log "2. Debian bookworm arm64 root in $ROOT"
if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    rm -rf "$ROOT"
    t0=$(date +%s)
    $NICE debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,libc6-dev,time,ca-certificates \
        bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed (log: $WORK/debootstrap.log)"; }
    say "debootstrap: $(( $(date +%s) - t0 )) s"
else
    echo "exists, not bootstrapped again"
fi

mounted=()
cleanup() {
    local i
    for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mnt() {  # mnt TARGET mount-args...: mount unless already mounted
    local target=$1; shift
    mountpoint -q "$target" && return 0
    mount "$@" "$target"
    mounted+=("$target")
}
mnt "$ROOT/proc" -t proc proc
mnt "$ROOT/dev" --bind /dev
mnt "$ROOT/dev/pts" --bind /dev/pts
mnt "$ROOT/sys" --bind /sys
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# pip in the chroot trusts the same CA bundle as pip here (it may differ from
# Debian's stock bundle on hosts behind a TLS proxy)
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$HOST_CA" ] && cp -L "$HOST_CA" "$ROOT/etc/ssl/certs/host-ca-bundle.crt"

# a clean environment in the chroot: none of this host's pip settings
inroot() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 "$@"
}
[ "$(inroot uname -m)" = aarch64 ] || die "the chroot does not run as aarch64"

# -------------------------------------------- 3. compiled build in the chroot
log "3. toolchain, tree, compiled build"
if ! inroot dpkg -s python3-venv python3-dev gcc time >/dev/null 2>&1; then
    inroot apt-get update -q
    inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv python3-dev gcc time
fi
REV=$(git -C "$REPO" rev-parse --short HEAD)
SRC=/src/otwatch                        # in the chroot
rm -rf "$ROOT$SRC" && mkdir -p "$ROOT$SRC"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT$SRC"
say "tree: git archive $REV; $(inroot python3 -V); $(inroot gcc --version | head -1); $QEMU_VERSION"

rm -rf "$ROOT/opt/venv-c" "$ROOT/opt/venv-nocc"
inroot python3 -m venv /opt/venv-c
inroot /opt/venv-c/bin/pip install -q --upgrade pip >/dev/null
t0=$(date +%s)
# /usr/bin/time -v: "Maximum resident set size" is that of the biggest single
# process in the tree (cc1 on engine.c), as qemu-aarch64 sees it
if ! inroot /bin/sh -c "cd $SRC && OTWATCH_REQUIRE_EXTENSIONS=1 nice -n 10 /usr/bin/time -v \
        /opt/venv-c/bin/pip install -v ." >"$OUT/pip-install-compiled.log" 2>&1; then
    tail -30 "$OUT/pip-install-compiled.log"; die "compiled install failed (log: $OUT/pip-install-compiled.log)"
fi
say "compiled pip install . (incl. dependency downloads, build isolation): $(( $(date +%s) - t0 )) s wall," \
    "peak RSS $(awk -F': ' '/Maximum resident/ {printf "%d MB", $2/1024}' "$OUT/pip-install-compiled.log")"
# Cython + gcc alone, with the build dependencies already in the venv
inroot /opt/venv-c/bin/pip install -q "cython>=3.0" "setuptools>=68" wheel
# a fresh copy: the install above left build/ and ext/*.c in $SRC, which would be reused
rm -rf "$ROOT/tmp/whl" "$ROOT/tmp/build-only" && mkdir -p "$ROOT/tmp/build-only"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT/tmp/build-only"
t0=$(date +%s)
inroot /bin/sh -c "cd /tmp/build-only && OTWATCH_REQUIRE_EXTENSIONS=1 nice -n 10 /usr/bin/time -v \
    /opt/venv-c/bin/pip wheel --no-build-isolation --no-deps -w /tmp/whl ." >"$OUT/pip-wheel-compiled.log" 2>&1 ||
    { tail -30 "$OUT/pip-wheel-compiled.log"; die "compiled wheel failed"; }
say "Cython + gcc only (pip wheel --no-build-isolation --no-deps): $(( $(date +%s) - t0 )) s wall," \
    "peak RSS $(awk -F': ' '/Maximum resident/ {printf "%d MB", $2/1024}' "$OUT/pip-wheel-compiled.log")," \
    "wheel $(inroot /bin/sh -c 'ls /tmp/whl')"
say "generated C: $(inroot /bin/sh -c 'cat /tmp/build-only/ext/*.c | wc -c') bytes;" \
    ".so: $(inroot /bin/sh -c 'cd /opt/venv-c/lib/python3*/site-packages/otwatch/ext && for f in _*.so; do printf "%s %s; " $f $(stat -c %s $f); done')"
say "aarch64 otwatch version: $(inroot /opt/venv-c/bin/otwatch version | tr '\n' ' ')"
inroot /opt/venv-c/bin/otwatch version | grep -q 'kernels: compiled' || die "aarch64 build is not compiled"
file -L "$ROOT"/opt/venv-c/lib/python3*/site-packages/otwatch/ext/_engine*.so 2>/dev/null | sed "s|$ROOT||" | tee -a "$SUMMARY" || true

# ----------------------------------------------- native reference (x86 here)
log "native reference from the same archive"
rm -rf "$NATIVE" && mkdir -p "$NATIVE/src"
git -C "$REPO" archive HEAD | tar -x -C "$NATIVE/src"
/usr/bin/python3 -m venv "$NATIVE/venv"  # Debian bookworm's, as in the chroot
(cd "$NATIVE/src" && OTWATCH_REQUIRE_EXTENSIONS=1 $NICE "$NATIVE/venv/bin/pip" install -q .) >"$OUT/pip-install-native.log" 2>&1 ||
    { tail -30 "$OUT/pip-install-native.log"; die "native install failed"; }
say "x86_64 otwatch version: $("$NATIVE/venv/bin/otwatch" version | tr '\n' ' ')"

# ------------------------------------------------------- run and compare
log "analyze: aarch64 compiled / aarch64 pure / x86_64 compiled / x86_64 pure"
run_all() {  # run_all TAG ENVVAR...: analyze every capture on one platform+path
    local tag=$1; shift
    local cap name t0
    for cap in $CAPTURES; do
        name=$(basename "$cap"); name=${name%%.*}
        t0=$(date +%s%N)
        case $tag in
            arm-*) inroot /usr/bin/env "$@" /bin/sh -c \
                       "cd $SRC && nice -n 10 /opt/venv-c/bin/otwatch analyze --no-inventory -q --json /tmp/out.json $cap" &&
                   cp "$ROOT/tmp/out.json" "$OUT/$tag.$name.json" ;;
            x86-*) (cd "$NATIVE/src" && env "$@" $NICE "$NATIVE/venv/bin/otwatch" analyze --no-inventory -q \
                       --json "$OUT/$tag.$name.json" "$cap") ;;
        esac
        printf '%-12s %-18s %7d ms  %s lines\n' "$tag" "$name" "$(( ($(date +%s%N) - t0) / 1000000 ))" \
            "$(wc -l <"$OUT/$tag.$name.json")" | tee -a "$SUMMARY"
    done
}
run_all arm-compiled OTWATCH_REQUIRE_EXTENSIONS=1
run_all arm-pure OTWATCH_NO_EXTENSIONS=1
say "aarch64 with OTWATCH_NO_EXTENSIONS=1: $(inroot env OTWATCH_NO_EXTENSIONS=1 /opt/venv-c/bin/otwatch version | grep kernels)"
run_all x86-compiled OTWATCH_REQUIRE_EXTENSIONS=1
run_all x86-pure OTWATCH_NO_EXTENSIONS=1
same=0; differ=0
for cap in $CAPTURES; do
    name=$(basename "$cap"); name=${name%%.*}
    for tag in arm-compiled arm-pure x86-pure; do
        if cmp -s "$OUT/x86-compiled.$name.json" "$OUT/$tag.$name.json"; then
            same=$((same + 1))
        else
            differ=$((differ + 1))
            say "DIFFERENT: $tag.$name.json vs x86-compiled.$name.json:"
            diff "$OUT/x86-compiled.$name.json" "$OUT/$tag.$name.json" | head -20 | tee -a "$SUMMARY"
        fi
    done
done
say "JSON byte-for-byte vs x86_64 compiled: $same identical, $differ different"
for cap in $CAPTURES; do
    name=$(basename "$cap"); name=${name%%.*}
    say "  $name: $(sha256sum "$OUT/x86-compiled.$name.json" | cut -c1-16) $(wc -c <"$OUT/x86-compiled.$name.json") bytes"
done

# -------------------------------------------------- 4. no compiler (aarch64)
log "4. no compiler: CC=/bin/false pip install ."
# a fresh copy of the tree: pip builds in the tree, and setuptools would reuse the
# .so files that the compiled install left in $SRC/build (seen: the wheel then
# ships them, compiler or not)
NOCC=/src/otwatch-nocc
rm -rf "$ROOT$NOCC" && mkdir -p "$ROOT$NOCC"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT$NOCC"
inroot python3 -m venv /opt/venv-nocc
inroot /opt/venv-nocc/bin/pip install -q --upgrade pip >/dev/null
inroot /bin/sh -c "cd $NOCC && CC=/bin/false /opt/venv-nocc/bin/pip install ." >"$OUT/pip-install-nocc.log" 2>&1 ||
    { tail -30 "$OUT/pip-install-nocc.log"; die "no-compiler install failed: it must fall back to pure"; }
say "no-compiler pip install . (no -v): exit 0; otwatch lines pip showed: $(grep -c '^\*\*\* otwatch' "$OUT/pip-install-nocc.log" || true)"
rm -rf "$ROOT$NOCC/build"
inroot /bin/sh -c "cd $NOCC && CC=/bin/false /opt/venv-nocc/bin/pip install -v --force-reinstall --no-deps ." \
    >"$OUT/pip-install-nocc-v.log" 2>&1 || die "no-compiler install -v failed"
say "with -v, pip shows $(grep -c 'otwatch: could not compile' "$OUT/pip-install-nocc-v.log") times:"
{ grep -m1 -A3 'otwatch: could not compile' "$OUT/pip-install-nocc-v.log" || true; } | tee -a "$SUMMARY"
say "no-compiler otwatch version: $(inroot /opt/venv-nocc/bin/otwatch version | tr '\n' ' ')"
inroot /opt/venv-nocc/bin/otwatch version | grep -q 'kernels: pure' || die "no-compiler install is not pure"
inroot /bin/sh -c "cd $SRC && /opt/venv-nocc/bin/otwatch analyze --no-inventory -q --json /tmp/nocc.json pcaps/demo-plant.pcap"
if cmp -s "$ROOT/tmp/nocc.json" "$OUT/x86-compiled.demo-plant.json"; then
    say "no-compiler install, demo-plant JSON: identical to x86_64 compiled"
else
    say "no-compiler install, demo-plant JSON: DIFFERENT from x86_64 compiled"; differ=$((differ + 1))
fi

# ------------------------------------------------------- 5. optional: tests
if [ "$SKIP_TESTS" = 0 ]; then
    log "5. pytest tests/ext and bench/smoke.py in the chroot"
    inroot /opt/venv-c/bin/pip install -q pytest pytest-asyncio hypothesis dpkt
    inroot /bin/sh -c "cd $SRC && nice -n 10 /opt/venv-c/bin/python -m pytest tests/ext -q" 2>&1 |
        tee "$OUT/pytest-ext.log" | tail -3
    say "pytest tests/ext (aarch64): $(tail -1 "$OUT/pytest-ext.log")"
    inroot /bin/sh -c "cd $SRC && nice -n 10 /opt/venv-c/bin/python bench/smoke.py" 2>&1 | tee "$OUT/smoke.log" | tail -15
fi

log "summary ($SUMMARY)"
cat "$SUMMARY"
[ "$differ" = 0 ] || exit 1

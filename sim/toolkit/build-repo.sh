#!/bin/bash
# build-repo.sh OUTDIR [BASE_URL]
#
# Builds the SIMULATED stub "NVIDIA Container Toolkit" Debian package
# (nvidia-container-toolkit_1.17.8-1~sim_all.deb) from the scripts next to this file and lays
# out a signed flat apt repository shaped like NVIDIA's
#   deb [signed-by=KEYRING] <BASE_URL>/stable/deb/$(ARCH) /
#
#   OUTDIR/gpgkey                         ASCII-armored public key (like .../libnvidia-container/gpgkey)
#   OUTDIR/stable/deb/{amd64,arm64}/      the .deb, Packages, Packages.gz, Release, InRelease, Release.gpg
#   OUTDIR/stable/deb/nvidia-container-toolkit.list   (only when BASE_URL is given)
#   OUTDIR/.gnupg/                        the signing key (generated once, no passphrase, reused)
#
# Re-running with unchanged sources changes nothing (prints "up to date"). Works as root or not
# on Debian 12 with: gnupg (gpg, gpgv, gpgconf, gpg-agent), dpkg-dev (dpkg-scanpackages),
# apt-utils (apt-ftparchive), dpkg (dpkg-deb), gzip, coreutils, util-linux (flock).
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [BASE_URL]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
BASE_URL=${2:-}

PKG=nvidia-container-toolkit
UPSTREAM=1.17.8
VERSION=${UPSTREAM}-1~sim
DEB=${PKG}_${VERSION}_all.deb
ARCHES="amd64 arm64"
BINARIES="nvidia-ctk nvidia-container-runtime nvidia-container-runtime-hook"
KEY_UID="SIMULATED NVIDIA Container Toolkit repo (sglang-spark tests only) <sim-toolkit-repo@example.invalid>"
# Fixed timestamp for reproducible package contents (2025-01-01T00:00:00Z).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600}

for tool in dpkg-deb dpkg-scanpackages apt-ftparchive gpg gpgv gpgconf gzip sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build-repo.sh: missing '$tool' (apt-get install gnupg dpkg-dev apt-utils)" >&2
        exit 1
    }
done

exec 9>"$OUT/.build.lock"
flock 9

# ---------------------------------------------------------------- up-to-date check
stamp=$(
    cd "$HERE"
    echo "$PKG $VERSION $ARCHES"
    sha256sum $BINARIES build-repo.sh
)
expected=("$OUT/gpgkey" "$OUT/.gnupg/pubring.kbx")
for arch in $ARCHES; do
    for f in "$DEB" Packages Packages.gz Release InRelease Release.gpg; do
        expected+=("$OUT/stable/deb/$arch/$f")
    done
done

write_list() {
    [ -n "$BASE_URL" ] || return 0
    local list="$OUT/stable/deb/$PKG.list" content
    content="deb ${BASE_URL%/}/stable/deb/\$(ARCH) /"
    if [ ! -f "$list" ] || [ "$(cat "$list")" != "$content" ]; then
        printf '%s\n' "$content" >"$list.tmp" && mv -f "$list.tmp" "$list"
    fi
}

up_to_date=1
[ -f "$OUT/.build-stamp" ] && [ "$(cat "$OUT/.build-stamp")" = "$stamp" ] || up_to_date=0
for f in "${expected[@]}"; do [ -s "$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
    write_list
    echo "build-repo.sh: $OUT is up to date (SIMULATED $PKG $VERSION)"
    exit 0
fi

# ---------------------------------------------------------------- work area
WORK=$(mktemp -d /tmp/ctk-sim-repo.XXXXXX)
GNUPGHOME=$(mktemp -d /tmp/ctk-gpg.XXXXXX)   # short path: gpg-agent sockets live here
export GNUPGHOME
chmod 700 "$GNUPGHOME"
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all >/dev/null 2>&1 || true
    rm -rf "$WORK" "$GNUPGHOME"
}
trap cleanup EXIT

GPG=(gpg --batch --yes --quiet --no-tty --pinentry-mode loopback --passphrase "")

# ---------------------------------------------------------------- signing key (once)
if [ -s "$OUT/.gnupg/pubring.kbx" ] && [ -d "$OUT/.gnupg/private-keys-v1.d" ]; then
    cp -a "$OUT/.gnupg/." "$GNUPGHOME/"
    rm -f "$GNUPGHOME"/S.* "$GNUPGHOME"/*.lock
fi
FPR=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/ {print $10; exit}')
if [ -z "$FPR" ]; then
    echo "build-repo.sh: generating the repository signing key (ed25519, no passphrase)"
    "${GPG[@]}" --quick-gen-key "$KEY_UID" ed25519 sign never
    FPR=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')
    [ -n "$FPR" ] || { echo "build-repo.sh: key generation failed" >&2; exit 1; }
    rm -rf "$OUT/.gnupg.new"
    mkdir -m 700 "$OUT/.gnupg.new"
    (cd "$GNUPGHOME" && cp -a pubring.kbx trustdb.gpg private-keys-v1.d "$OUT/.gnupg.new/")
    rm -rf "$OUT/.gnupg"
    mv "$OUT/.gnupg.new" "$OUT/.gnupg"
fi

# ---------------------------------------------------------------- the package
ROOT="$WORK/pkg"
install -d -m 0755 "$ROOT/DEBIAN" "$ROOT/usr/bin" "$ROOT/usr/share/doc/$PKG"
for b in $BINARIES; do
    install -m 0755 "$HERE/$b" "$ROOT/usr/bin/$b"
done
cat >"$ROOT/usr/share/doc/$PKG/README.simulated" <<EOF
This is a SIMULATED stub of the NVIDIA Container Toolkit, built by the sglang-spark project's
sim/toolkit/build-repo.sh for test hosts without a GPU. It is NOT NVIDIA's software.

  /usr/bin/nvidia-ctk                     runtime configure (docker), cdi generate, cdi list
  /usr/bin/nvidia-container-runtime       exec runc "\$@"
  /usr/bin/nvidia-container-runtime-hook  OCI prestart hook: copies /usr/bin/nvidia-smi into
                                          containers started with --gpus
EOF
chmod 0644 "$ROOT/usr/share/doc/$PKG/README.simulated"
installed_size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: all
Maintainer: sglang-spark test fixtures <sim-toolkit-repo@example.invalid>
Installed-Size: $installed_size
Depends: python3
Provides: nvidia-container-toolkit-base (= $VERSION), libnvidia-container-tools (= $VERSION)
Section: utils
Priority: optional
Homepage: https://github.com/NVIDIA/nvidia-container-toolkit
Description: SIMULATED stub of the NVIDIA Container Toolkit (test hosts only)
 NOT the NVIDIA Container Toolkit. A stand-in for simulated DGX Spark test hosts without a GPU:
 nvidia-ctk configures the docker runtime like the real tool, nvidia-container-runtime execs
 runc, and nvidia-container-runtime-hook lets the real "docker run --gpus all" path run by
 copying the host's (simulated) nvidia-smi into the container.
EOF
chmod 0644 "$ROOT/DEBIAN/control"
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$WORK/$DEB" >/dev/null

# ---------------------------------------------------------------- the repository
"${GPG[@]}" --armor --export "$FPR" >"$WORK/gpgkey"
gpg --batch --dearmor <"$WORK/gpgkey" >"$WORK/keyring.gpg"

for arch in $ARCHES; do
    d="$WORK/stable/deb/$arch"
    mkdir -p "$d"
    cp "$WORK/$DEB" "$d/$DEB"
    (cd "$d" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
    gzip -9n <"$d/Packages" >"$d/Packages.gz"
    (cd "$d" && apt-ftparchive \
        -o APT::FTPArchive::Release::Origin="sglang-spark-sim" \
        -o APT::FTPArchive::Release::Label="SIMULATED nvidia-container-toolkit" \
        -o APT::FTPArchive::Release::Suite="stable" \
        -o APT::FTPArchive::Release::Architectures="$arch" \
        -o APT::FTPArchive::Release::Description="SIMULATED NVIDIA Container Toolkit stub repository (test hosts only)" \
        release . >"$WORK/Release.$arch")
    mv "$WORK/Release.$arch" "$d/Release"
    "${GPG[@]}" --local-user "$FPR" --digest-algo SHA512 --clearsign -o "$d/InRelease" "$d/Release"
    "${GPG[@]}" --local-user "$FPR" --digest-algo SHA512 --armor --detach-sign -o "$d/Release.gpg" "$d/Release"
    # self-check: what apt will verify
    gpgv --quiet --keyring "$WORK/keyring.gpg" "$d/InRelease" 2>/dev/null
    gpgv --quiet --keyring "$WORK/keyring.gpg" "$d/Release.gpg" "$d/Release" 2>/dev/null
done

cat >"$WORK/README.SIMULATED" <<EOF
SIMULATED apt repository with a stub "nvidia-container-toolkit" ($VERSION) for test hosts.
Not NVIDIA's repository. Use like NVIDIA's:
  gpg --dearmor < gpgkey > /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] <BASE_URL>/stable/deb/\$(ARCH) /
Signing key fingerprint: $FPR
EOF

# ---------------------------------------------------------------- install into OUTDIR
install_file() {  # src dest: replace only when the bytes differ
    if ! cmp -s "$1" "$2"; then
        mkdir -p "$(dirname "$2")"
        cp "$1" "$2.tmp.$$"
        chmod 0644 "$2.tmp.$$"
        mv -f "$2.tmp.$$" "$2"
    fi
}
install_file "$WORK/gpgkey" "$OUT/gpgkey"
install_file "$WORK/README.SIMULATED" "$OUT/README.SIMULATED"
for arch in $ARCHES; do
    for f in "$DEB" Packages Packages.gz Release Release.gpg InRelease; do
        install_file "$WORK/stable/deb/$arch/$f" "$OUT/stable/deb/$arch/$f"
    done
    # drop stale packages from older builds
    for old in "$OUT/stable/deb/$arch"/*.deb; do
        [ "$(basename "$old")" = "$DEB" ] || rm -f "$old"
    done
done
write_list
printf '%s\n' "$stamp" >"$OUT/.build-stamp"
echo "build-repo.sh: built SIMULATED $PKG $VERSION into $OUT (key $FPR)"

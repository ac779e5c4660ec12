#!/usr/bin/env bash
# `make dist`: the portable binaries (x86_64 and aarch64, glibc >= 2.17),
# and for each a tarball, a .deb and an .rpm built from that same binary;
# the Ansible collection; SHA256SUMS; all in dist/. The x86_64 binary is
# dist/gpu-setup (this machine's), the aarch64 one dist/aarch64/gpu-setup,
# built in a Debian chroot by packaging/aarch64.sh (root).
# GPU_SETUP_DIST_ARCHES=x86_64 builds only the first (no root needed).
# docs/install.md says what each holds; tests/it/dist.rs checks them.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PWD/.venv/bin:$PATH"
NAME=gpu-setup
GLIBC=2.17
ARCHES=${GPU_SETUP_DIST_ARCHES:-x86_64 aarch64}
OUT=dist
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
# The packaging revision (Debian's -N, rpm's Release).
REVISION=1
HOMEPAGE=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
MAINTAINER="gpu-setup maintainers <gpu-setup@example.invalid>"
SUMMARY="Make a Linux host able to run NVIDIA GPU containers under Podman"
# Reproducible archives: every timestamp is the last commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

missing=0
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "make dist needs \`$1\`: $2" >&2
    missing=1
  fi
}
need cargo-zigbuild "make dist-tools (pip installs cargo-zigbuild and ziglang into .venv)"
if ! python3 -c 'import ziglang' 2>/dev/null; then
  echo "make dist needs zig from PyPI (ziglang): make dist-tools" >&2
  missing=1
fi
need dpkg-deb "apt-get install dpkg"
need readelf "apt-get install binutils"
need rpmbuild "apt-get install rpm"
need gzip "apt-get install gzip"
need sha256sum "apt-get install coreutils"
need ansible-galaxy "make dist-tools (pip installs ansible-core into .venv)"
case " $ARCHES " in
  *" aarch64 "*) need mmdebstrap "apt-get install mmdebstrap (the aarch64 build's Debian chroot; or GPU_SETUP_DIST_ARCHES=x86_64)" ;;
esac
[ "$missing" = 0 ] || exit 1
COLLECTION_VERSION=$(sed -n 's/^version: //p' ansible/collection/galaxy.yml)
if [ "$COLLECTION_VERSION" != "$VERSION" ]; then
  echo "ansible/collection/galaxy.yml says version $COLLECTION_VERSION, Cargo.toml $VERSION" >&2
  exit 1
fi

echo "building $NAME $VERSION for x86_64 with glibc >= $GLIBC"
cargo zigbuild --release --locked -p "$NAME" --target "x86_64-unknown-linux-gnu.$GLIBC"

rm -rf "$OUT"
mkdir -p "$OUT"
install -m 0755 "target/x86_64-unknown-linux-gnu/release/$NAME" "$OUT/$NAME"
case " $ARCHES " in
  *" aarch64 "*)
    echo "building $NAME $VERSION for aarch64 with glibc >= $GLIBC (packaging/aarch64.sh)"
    AARCH64_BIN=$(bash packaging/aarch64.sh)
    install -D -m 0755 "$AARCH64_BIN" "$OUT/aarch64/$NAME"
    ;;
esac
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# What every artefact carries: man pages (docs/man, kept in step with
# --help by the man_pages test), completions from the binary itself, the
# heal units, the example profile and package-manager hooks, docs.
COMMON="$WORK/common"
mkdir -p "$COMMON/man" "$COMMON/completions"
cp docs/man/*.1 docs/man/*.5 "$COMMON/man/"
"$OUT/$NAME" completions bash >"$COMMON/completions/$NAME"
"$OUT/$NAME" completions zsh >"$COMMON/completions/_$NAME"
"$OUT/$NAME" completions fish >"$COMMON/completions/$NAME.fish"

# stage BIN ROOT ZSH_DIR DOC_COMPRESS: the installed file tree of a package.
stage() {
  local bin=$1 root=$2 zsh_dir=$3 compress_docs=$4
  install -D -m 0755 "$bin" "$root/usr/bin/$NAME"
  for page in "$COMMON"/man/*.[15]; do
    section=man${page##*.}
    install -D -m 0644 "$page" "$root/usr/share/man/$section/$(basename "$page")"
    gzip -9n "$root/usr/share/man/$section/$(basename "$page")"
  done
  install -D -m 0644 "$COMMON/completions/$NAME" "$root/usr/share/bash-completion/completions/$NAME"
  install -D -m 0644 "$COMMON/completions/_$NAME" "$root$zsh_dir/_$NAME"
  install -D -m 0644 "$COMMON/completions/$NAME.fish" "$root/usr/share/fish/vendor_completions.d/$NAME.fish"
  for unit in templates/systemd/*; do
    install -D -m 0644 "$unit" "$root/usr/lib/systemd/system/$(basename "$unit")"
  done
  local doc="$root/usr/share/doc/$NAME"
  install -D -m 0644 templates/gpu-setup.toml "$doc/examples/gpu-setup.toml"
  install -D -m 0644 templates/apt/90gpu-setup-heal "$doc/examples/apt/90gpu-setup-heal"
  install -D -m 0644 templates/dnf/gpu-setup.action "$doc/examples/dnf/gpu-setup.action"
  install -D -m 0644 examples/provision.sh "$doc/examples/provision.sh"
  # Every doc the binary, its --help or a man page refers to.
  for d in README.md docs/install.md docs/heal.md docs/plan.md docs/journal.md \
    docs/doctor.md docs/security.md docs/provisioning.md; do
    install -D -m 0644 "$d" "$doc/$(basename "$d")"
    if [ "$compress_docs" = yes ]; then gzip -9n "$doc/$(basename "$d")"; fi
  done
}

# package ARCH BIN: the .deb, the .rpm and the tarball of one architecture.
package() {
  local arch=$1 bin=$2 deb_arch machine
  case "$arch" in
    x86_64) deb_arch=amd64 machine="Advanced Micro Devices X86-64" ;;
    aarch64) deb_arch=arm64 machine="AArch64" ;;
  esac
  # readelf reads every architecture's ELF (objdump only this machine's).
  if ! readelf -h "$bin" | grep -q "Machine: *$machine\$"; then
    echo "$bin is not an $arch binary: $(readelf -h "$bin" | grep Machine)" >&2
    exit 1
  fi
  # The highest glibc symbol version the binary needs: its only dependency.
  GLIBC_NEEDED=$(readelf --dyn-syms -W "$bin" | grep -o '@GLIBC_[0-9.]*' | sed 's/@GLIBC_//' | sort -V | tail -n1)
  case "$GLIBC_NEEDED" in
    2.1[0-7] | 2.[0-9]) ;;
    *) echo "$bin needs glibc $GLIBC_NEEDED, more than $GLIBC" >&2; exit 1 ;;
  esac

  # --- .deb, with Debian's own dpkg-deb (no extra build tool to install or
  # trust).
  DEB_ROOT="$WORK/deb-$arch"
  stage "$bin" "$DEB_ROOT" /usr/share/zsh/vendor-completions yes
  DOC="$DEB_ROOT/usr/share/doc/$NAME"
  sed "s|@HOMEPAGE@|$HOMEPAGE|" packaging/deb/copyright >"$DOC/copyright"
  chmod 0644 "$DOC/copyright"
  {
    echo "$NAME ($VERSION-$REVISION) unstable; urgency=medium"
    echo
    echo "  * Release $VERSION."
    echo
    echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -9n >"$DOC/changelog.Debian.gz"
  chmod 0644 "$DOC/changelog.Debian.gz"
  install -D -m 0644 packaging/deb/lintian-overrides "$DEB_ROOT/usr/share/lintian/overrides/$NAME"
  # Not dpkg-shlibdeps: on a build host with glibc >= 2.34 it maps
  # libpthread.so.0 and libdl.so.2 (stubs since 2.34) to libc6 (>= 2.34), which
  # would refuse Debian 11 and Ubuntu 20.04. The symbol versions decide.
  DEPENDS="libc6 (>= $GLIBC_NEEDED)"
  mkdir -p "$DEB_ROOT/DEBIAN"
  for script in postinst prerm postrm; do
    install -m 0755 "packaging/deb/$script" "$DEB_ROOT/DEBIAN/$script"
  done
  INSTALLED_SIZE=$(du -sk --apparent-size "$DEB_ROOT" | cut -f1)
  sed -e "s|@VERSION@|$VERSION-$REVISION|" -e "s|@ARCH@|$deb_arch|" -e "s|@DEPENDS@|$DEPENDS|" -e "s|@HOMEPAGE@|$HOMEPAGE|" \
    -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" \
    packaging/deb/control >"$DEB_ROOT/DEBIAN/control"
  (cd "$DEB_ROOT" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  find "$DEB_ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  DEB="$OUT/${NAME}_${VERSION}-${REVISION}_$deb_arch.deb"
  dpkg-deb --root-owner-group -Zxz --build "$DEB_ROOT" "$DEB" >/dev/null

  # --- .rpm, with rpmbuild from Debian's rpm package (the same rpm that
  # checks it): the spec only copies the staged tree.
  RPM_ROOT="$WORK/rpm-$arch"
  stage "$bin" "$RPM_ROOT" /usr/share/zsh/site-functions no
  install -D -m 0644 LICENSE "$RPM_ROOT/usr/share/licenses/$NAME/LICENSE"
  find "$RPM_ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  rpmbuild --quiet -bb \
    --define "_topdir $WORK/rpmbuild-$arch" \
    --define "_rpmdir $PWD/$OUT" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "stage $RPM_ROOT" \
    --define "version $VERSION" \
    --define "revision $REVISION" \
    --define "homepage $HOMEPAGE" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --target "$arch-linux" \
    packaging/rpm/gpu-setup.spec

  # --- tarball: the binary and everything the packages install, as files.
  TAR_DIR="$WORK/tar-$arch/$NAME-$VERSION"
  mkdir -p "$TAR_DIR"
  install -m 0755 "$bin" "$TAR_DIR/$NAME"
  cp -r "$COMMON/man" "$COMMON/completions" "$TAR_DIR/"
  mkdir -p "$TAR_DIR/systemd" "$TAR_DIR/examples/apt" "$TAR_DIR/examples/dnf"
  cp templates/systemd/* "$TAR_DIR/systemd/"
  cp templates/gpu-setup.toml "$TAR_DIR/examples/"
  cp templates/apt/90gpu-setup-heal "$TAR_DIR/examples/apt/"
  cp templates/dnf/gpu-setup.action "$TAR_DIR/examples/dnf/"
  cp README.md LICENSE docs/install.md docs/heal.md "$TAR_DIR/"
  TARBALL="$OUT/$NAME-$VERSION-$arch-unknown-linux-gnu.tar.gz"
  tar -C "$WORK/tar-$arch" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 \
    --numeric-owner -cf - "$NAME-$VERSION" | gzip -9n >"$TARBALL"
  SUMS+=("$(basename "$TARBALL")" "$(basename "$DEB")" "$NAME-$VERSION-$REVISION.$arch.rpm")
}

SUMS=("$NAME")
package x86_64 "$OUT/$NAME"
case " $ARCHES " in
  *" aarch64 "*)
    SUMS+=("aarch64/$NAME")
    package aarch64 "$OUT/aarch64/$NAME"
    ;;
esac

# The Ansible collection gpu_setup.podman_nvidia (docs/provisioning.md).
COLLECTION="gpu_setup-podman_nvidia-$VERSION.tar.gz"
ansible-galaxy collection build ansible/collection --output-path "$OUT" --force >/dev/null
[ -f "$OUT/$COLLECTION" ] || { echo "ansible-galaxy did not build $OUT/$COLLECTION" >&2; exit 1; }

SUMS+=("$COLLECTION")
(cd "$OUT" && sha256sum "${SUMS[@]}" >SHA256SUMS)
echo "dist/:"
ls -lR "$OUT"

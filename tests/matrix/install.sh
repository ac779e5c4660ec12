#!/usr/bin/env bash
# Puts gpu-setup and the real NVIDIA Container Toolkit into a matrix
# chroot's overlay ($NEWROOT), as its packages would (run by enter.sh,
# outside the chroot). Environment:
#   GPU_SETUP_BIN   the gpu-setup binary (the portable one for old glibc)
#   NVIDIA_TOOLKIT  a folder of ../shared/tools/nvidia-container-toolkit
#   NVIDIA_CONFIG   the stock config.toml the package would install
# The toolkit binaries need glibc 2.34; where the chroot's is older
# (bullseye: 2.31) each is run through this machine's own dynamic loader
# and libc, copied into /opt/glibc (the same binary, another libc).
set -euo pipefail
trap 'echo "install.sh: line $LINENO failed" >&2' ERR
r=${NEWROOT:?}
install -m 0755 "${GPU_SETUP_BIN:?}" "$r/usr/local/bin/gpu-setup"
tk=${NVIDIA_TOOLKIT:?}
need() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 | cut -d_ -f2; }
# (sed reads all of ldd's output: no SIGPIPE under pipefail.)
have=$(chroot "$r" /usr/bin/ldd --version 2>/dev/null | sed -n '1s/.* //p')
wrap=0
if [ "$(printf '%s\n%s\n' "$(need "$tk/nvidia-ctk")" "$have" | sort -V | tail -1)" != "$have" ]; then
  wrap=1
  mkdir -p "$r/opt/glibc" "$r/opt/nvidia"
  cp -L /lib64/ld-linux-x86-64.so.2 "$r/opt/glibc/"
  cp -L "$(ldd "$tk/nvidia-ctk" | awk '/libc.so.6/ {print $3}')" "$r/opt/glibc/"
fi
for b in nvidia-ctk nvidia-container-runtime nvidia-container-runtime-hook nvidia-cdi-hook; do
  if [ "$wrap" = 1 ]; then
    install -m 0755 "$tk/$b" "$r/opt/nvidia/$b"
    printf '#!/bin/sh\nexec /opt/glibc/ld-linux-x86-64.so.2 --library-path /opt/glibc /opt/nvidia/%s "$@"\n' "$b" >"$r/usr/bin/$b"
    chmod 0755 "$r/usr/bin/$b"
  else
    install -m 0755 "$tk/$b" "$r/usr/bin/$b"
  fi
done
# The packages' postinst link (facts doc: deb `ln -s`, rpm `ln -sf`).
ln -sf nvidia-container-runtime-hook "$r/usr/bin/nvidia-container-toolkit"
# libnvidia-container (C) is not built here: a stand-in CLI that logs
# what the real hook passes it.
cat >"$r/usr/bin/nvidia-container-cli" <<'CLI'
#!/bin/sh
echo "$@" >>/var/log/cli.log
exit 0
CLI
chmod 0755 "$r/usr/bin/nvidia-container-cli"
mkdir -p "$r/etc/nvidia-container-runtime"
install -m 0644 "${NVIDIA_CONFIG:?}" "$r/etc/nvidia-container-runtime/config.toml"
# A stub libnvidia-ml.so.1 whose init says "Driver Not Loaded" (the
# toolkit's src/fakenvml), for a scenario to put in place when it wants.
mkdir -p "$r/opt/fakenvml"
gcc -shared -fPIC -o "$r/opt/fakenvml/libnvidia-ml.so.1" "$tk/../src/fakenvml/fake-nvml.c"

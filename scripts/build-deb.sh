#!/usr/bin/env bash
# Builds build/sentry-xdp_VERSION_ARCH.deb from a built tree (`make deb` runs build, man and
# completion first). The package needs no network at install time: production npm dependencies
# only, koffi's binary for this architecture only, the compiled control plane (dist/src), the XDP
# objects and the native shim the loader finds under /usr/lib/sentry-xdp/build.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
case $arch in
  amd64) koffi_arch=linux_x64 ;;
  arm64) koffi_arch=linux_arm64 ;;
  armhf) koffi_arch=linux_armhf ;;
  i386) koffi_arch=linux_ia32 ;;
  riscv64) koffi_arch=linux_riscv64d ;;
  loong64) koffi_arch=linux_loong64 ;;
  *) echo "build-deb: no koffi binary for Debian architecture $arch" >&2; exit 1 ;;
esac
maintainer=${DEB_MAINTAINER:-sentry-xdp maintainers <root@localhost>}
out=build/sentry-xdp_${version}_${arch}.deb

for f in dist/src/cli/main.js build/sentry.bpf.o build/sentry_noct.bpf.o build/libsentry_shim.so \
  build/man/sentry-xdp.8 build/man/sentry-xdp.yaml.5 build/completion/sentry-xdp; do
  [[ -f $f ]] || { echo "build-deb: $f is missing; run \`make deb\` (it builds everything first)" >&2; exit 1; }
done

stage=build/deb
root=$stage/root
lib=$root/usr/lib/sentry-xdp
rm -rf "$stage"
mkdir -p "$lib/build" "$root/DEBIAN"

# the control plane: compiled JavaScript only (no sources, maps, tests or benchmarks)
mkdir -p "$lib/dist"
cp -r dist/src "$lib/dist/src"
find "$lib/dist" -name '*.map' -delete
# "type": "module" and the version `--version` prints; nothing else of it is read at run time
node -e '
  const p = require("./package.json");
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license, type: p.type, private: true,
                 engines: p.engines, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' >"$lib/package.json"
cp package-lock.json "$lib/"

# what src/adapters/kernel.ts artifactPath() loads: the XDP objects and the shim
install -m 644 build/sentry.bpf.o build/sentry_noct.bpf.o "$lib/build/"
install -m 644 build/libsentry_shim.so "$lib/build/"
strip --strip-unneeded "$lib/build/libsentry_shim.so"

# production dependencies, from the local node_modules (no network): a copy pruned of dev ones
cp -a node_modules "$lib/node_modules"
(cd "$lib" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
rm -f "$lib/package-lock.json"
# koffi ships a binary for ~18 platforms and its C++ sources: keep this architecture's binary
find "$lib/node_modules/koffi/build/koffi" -mindepth 1 -maxdepth 1 ! -name "$koffi_arch" -exec rm -rf {} +
rm -rf "$lib/node_modules/koffi/src" "$lib/node_modules/koffi/vendor" "$lib/node_modules/koffi/lib" "$lib/node_modules/koffi/doc"
[[ -f $lib/node_modules/koffi/build/koffi/$koffi_arch/koffi.node ]] || { echo "build-deb: koffi has no $koffi_arch binary" >&2; exit 1; }
# TypeScript sources and declarations, source maps, docs, the packages' own tests (licence files stay)
find "$lib/node_modules" \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -iname 'CHANGELOG*' -o -iname 'README*' -o -iname 'HISTORY*' \) -type f -delete
find "$lib/node_modules" -mindepth 2 -type d \( -name test -o -name tests -o -name examples \) -prune -exec rm -rf {} +
find "$lib/node_modules" -type d -empty -delete

# the launcher
install -d "$root/usr/bin"
printf '#!/bin/sh\nexec /usr/bin/node /usr/lib/sentry-xdp/dist/src/cli/main.js "$@"\n' >"$root/usr/bin/sentry-xdp"
chmod 755 "$root/usr/bin/sentry-xdp"

# systemd: the unit of packaging/ with the packaged launcher; the default file as a conffile, no
# interface named (the admin names them; postinst says so)
install -d "$root/lib/systemd/system" "$root/etc/default"
sed -e 's#^ExecStart=/usr/local/bin/sentry-xdp #ExecStart=/usr/bin/sentry-xdp #' \
  -e 's#^\# Installed by `make install` as /etc/systemd/system/sentry-xdp.service.#\# Installed by the sentry-xdp package as /lib/systemd/system/sentry-xdp.service.#' \
  packaging/sentry-xdp.service >"$root/lib/systemd/system/sentry-xdp.service"
grep -q '^ExecStart=/usr/bin/sentry-xdp ' "$root/lib/systemd/system/sentry-xdp.service" ||
  { echo "build-deb: packaging/sentry-xdp.service has no ExecStart=/usr/local/bin/sentry-xdp line to rewrite" >&2; exit 1; }
sed 's#^SENTRY_XDP_IFACES=.*#SENTRY_XDP_IFACES=""#' packaging/sentry-xdp.default >"$root/etc/default/sentry-xdp"
chmod 644 "$root/lib/systemd/system/sentry-xdp.service" "$root/etc/default/sentry-xdp"

# man pages, bash completion, docs
install -d "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/sentry-xdp"
gzip -9n <build/man/sentry-xdp.8 >"$root/usr/share/man/man8/sentry-xdp.8.gz"
gzip -9n <build/man/sentry-xdp.yaml.5 >"$root/usr/share/man/man5/sentry-xdp.yaml.5.gz"
install -m 644 build/completion/sentry-xdp "$root/usr/share/bash-completion/completions/sentry-xdp"
install -m 644 LICENSE "$root/usr/share/doc/sentry-xdp/copyright"
gzip -9n <CHANGELOG.md >"$root/usr/share/doc/sentry-xdp/changelog.gz"
gzip -9n <README.md >"$root/usr/share/doc/sentry-xdp/README.md.gz"

# Depends: the libraries the shim and koffi link, by dpkg-shlibdeps when it can tell
shlibs=""
if command -v dpkg-shlibdeps >/dev/null; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/debian"
  printf 'Source: sentry-xdp\n\nPackage: sentry-xdp\nArchitecture: any\n' >"$tmp/debian/control"
  shlibs=$(cd "$tmp" && dpkg-shlibdeps -O --warnings=0 \
    "$OLDPWD/$lib/build/libsentry_shim.so" "$OLDPWD/$lib/node_modules/koffi/build/koffi/$koffi_arch/koffi.node" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p') || shlibs=""
  rm -rf "$tmp"
fi
[[ -n $shlibs ]] || shlibs="libbpf1, libc6, libnetfilter-conntrack3, libstdc++6"
node_min=$(node -p 'require("./package.json").engines.node.replace(/^>=\s*/, "")')
depends="nodejs (>= $node_min), $shlibs, nftables, iproute2"

cp packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
echo /etc/default/sentry-xdp >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: sentry-xdp
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Recommends: redis-server
Section: net
Priority: optional
Description: XDP port-scan detector and blocker (PortSentry, rebuilt)
 An XDP program recognises port scans (SYN, FIN, NULL, XMAS and other impossible
 flag sets, UDP probes, sweeps, fragment evasion) without binding a port and
 drops banned sources in the driver. A Node.js control plane loads it through
 libbpf, prints PortSentry-style alerts, keeps an nftables table in step,
 records history in Redis or a local journal and shares bans across gateways.
CONTROL

find "$root" -type d -exec chmod 755 {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "build-deb: $out ($(du -h "$out" | cut -f1), $(dpkg-deb -c "$out" | grep -vc '/$') files, installed $((size / 1024)) MiB)"
echo "build-deb: Depends: $depends"

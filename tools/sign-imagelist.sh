#!/usr/bin/env bash
# sign-imagelist.sh: builds a HEPiX image list from image files and signs it (clear-signed
# S/MIME, detached PKCS#7, as `openssl smime -sign` writes it). For image producers and tests.
#
# usage: tools/sign-imagelist.sh --cert ENDORSER.pem --key ENDORSER.key --out LIST.smime
#          [--identifier UUID] [--title TEXT] [--version V] [--uri LIST-URL]
#          [--created DATE] [--expires DATE | --expires-days N] [--body-only FILE]
#          FILE=URL[,identifier=ID][,version=V][,title=T][,os=OS][,osversion=V][,arch=A]
#              [,format=raw][,cores=N][,ram=MiB][,size=N][,sha512=HEX][,strings]  ...
#   FILE    an image as it is downloaded (e.g. a .img.gz): its size and SHA-512 go in the list
#   URL     where hosts download it (hv:uri)
#   DATE    %Y-%m-%dT%H:%M:%SZ (UTC); created defaults to now, expires to now + 30 days
#   size=, sha512=   override what the file gives (tests: a list that lies)
#   strings          write the numbers as strings, as the EGI AppDB does
# The list's endorser (hv:dn, hv:ca) is the certificate's subject and issuer in OpenSSL's
# one-line form, which is how hvwgd compares DNs. --body-only FILE also writes the unsigned JSON.
set -euo pipefail

cert= key= out= ident= title="image list" version=1 uri= created= expires= days=30 body_only=
specs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cert) cert=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --identifier) ident=$2; shift 2 ;;
    --title) title=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --uri) uri=$2; shift 2 ;;
    --created) created=$2; shift 2 ;;
    --expires) expires=$2; shift 2 ;;
    --expires-days) days=$2; shift 2 ;;
    --body-only) body_only=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "sign-imagelist.sh: unknown option $1" >&2; exit 2 ;;
    *) specs+=("$1"); shift ;;
  esac
done
[ -n "$cert" ] && [ -n "$key" ] && [ -n "$out" ] || { echo "sign-imagelist.sh: --cert, --key and --out are required" >&2; exit 2; }
[ -n "$ident" ] || ident=$(cat /proc/sys/kernel/random/uuid)
[ -n "$created" ] || created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
[ -n "$expires" ] || expires=$(date -u -d "+$days days" +%Y-%m-%dT%H:%M:%SZ)
subject=$(openssl x509 -in "$cert" -noout -subject -nameopt compat | sed 's/^subject=//')
issuer=$(openssl x509 -in "$cert" -noout -issuer -nameopt compat | sed 's/^issuer=//')
email=$(openssl x509 -in "$cert" -noout -email | head -n1 || true)

# Each image: FILE's size and digest, then the rest of its spec, one per line for python.
images=()
for spec in "${specs[@]}"; do
  file=${spec%%=*}
  rest=${spec#*=}
  [ -f "$file" ] || { echo "sign-imagelist.sh: $file: no such file" >&2; exit 1; }
  size=$(stat -c %s "$file")
  sha=$(sha512sum "$file" | cut -d' ' -f1)
  images+=("$size" "$sha" "$rest")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$ident" "$title" "$version" "$uri" "$created" "$expires" "$subject" "$issuer" "$email" "${images[@]}" \
  > "$tmp/body.json" <<'EOF'
import json, sys, uuid
a = sys.argv[1:]
ident, title, version, uri, created, expires, dn, ca, email = a[:9]
rest = a[9:]
imgs = []
for i in range(0, len(rest), 3):
    size, sha, spec = rest[i], rest[i + 1], rest[i + 2]
    url, *opts = spec.split(",")
    o = dict(x.split("=", 1) if "=" in x else (x, "1") for x in opts)
    num = (lambda n: str(n)) if "strings" in o else (lambda n: int(n))
    img = {
        "dc:identifier": o.get("identifier", str(uuid.uuid4())),
        "dc:title": o.get("title", url.rsplit("/", 1)[-1]),
        "dc:description": o.get("title", ""),
        "hv:uri": url,
        "hv:size": num(o.get("size", size)),
        "sl:checksum:sha512": o.get("sha512", sha),
        "hv:version": o.get("version", "1"),
        "hv:format": o.get("format", "raw"),
        "hv:hypervisor": "QEMU,KVM",
        "sl:arch": o.get("arch", "x86_64"),
        "sl:os": o.get("os", "Linux"),
        "sl:osversion": o.get("osversion", ""),
        "sl:comments": o.get("comments", ""),
    }
    if "cores" in o:
        img["hv:core_minimum"] = num(o["cores"])
    if "ram" in o:
        img["hv:ram_minimum"] = num(o["ram"])
    imgs.append({"hv:image": img})
doc = {"hv:imagelist": {
    "dc:identifier": ident, "dc:title": title, "dc:description": title,
    "dc:date:created": created, "dc:date:expires": expires,
    "dc:source": uri, "hv:uri": uri, "hv:version": version,
    "hv:endorser": {"hv:x509": {"dc:creator": dn.rsplit("CN=", 1)[-1], "hv:ca": ca, "hv:dn": dn, "hv:email": email}},
    "hv:images": imgs}}
print(json.dumps(doc, indent=2))
EOF
[ -z "$body_only" ] || cp "$tmp/body.json" "$body_only"
# detached (clear-signed) and text-canonical (CRLF), as the image list readers expect
openssl smime -sign -in "$tmp/body.json" -signer "$cert" -inkey "$key" -out "$tmp/list.smime"
mv "$tmp/list.smime" "$out"

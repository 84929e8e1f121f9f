#!/usr/bin/env bash
# make-ca.sh DIR [HTTPS-HOST]: a throwaway IGTF-style trust setup for the image list tests.
#   DIR/cadir/      the CA certificate and its CRL, c_rehash layout ([Lists] CAPath)
#   DIR/ca.pem      the CA;  DIR/end.pem + end.key  the endorser (S/MIME signing)
#   DIR/old.pem + old.key   the endorser's earlier certificate: the same DN, revoked by the CRL
#   DIR/nosmime.pem + .key  the same DN, but for TLS servers only (not for S/MIME)
#   DIR/other.pem + .key    an endorser of the same DN issued by another CA (not trusted)
#   DIR/tls.pem + tls.key   a TLS server certificate for 127.0.0.1 from the same CA
#   DIR/good.json, good.smime, tampered.smime, otherca.smime, revoked.smime, nosmime.smime
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
d=$(readlink -f "$1")
mkdir -p "$d/cadir" "$d/db"
cd "$d"
: > db/index.txt
echo 1000 > db/serial
echo 1000 > db/crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = $d/db
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $d/ca.pem
private_key = $d/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = none
[ any ]
domainComponent = optional
commonName = supplied
emailAddress = optional
[ smime ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:e@example.org
[ server ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
CNF
q() { "$@" >/dev/null 2>&1 || { echo "make-ca.sh: $* failed" >&2; "$@"; exit 1; }; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/DC=org/DC=example/CN=Test CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
endorser="/DC=org/DC=example/CN=Endorser One/emailAddress=e@example.org"
issue() {  # name subject extensions
  q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  q openssl ca -batch -config ca.cnf -extensions "$3" -in "$1.csr" -out "$1.pem" -notext
}
issue old "$endorser" smime
issue end "$endorser" smime
issue nosmime "$endorser" server
issue tls "/DC=org/DC=example/CN=127.0.0.1" server
q openssl ca -config ca.cnf -revoke old.pem
q openssl ca -config ca.cnf -gencrl -out crl.pem
# another CA, same endorser DN
q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 30 -subj "/DC=org/DC=example/CN=Test CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req -newkey rsa:2048 -nodes -keyout other.key -out other.csr -subj "$endorser"
printf 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' > other.ext
q openssl x509 -req -in other.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -out other.pem -days 30 -extfile other.ext
cp ca.pem cadir/ca.pem
cp crl.pem cadir/crl.pem
q openssl rehash cadir
sign=$here/../../tools/sign-imagelist.sh
printf 'image bytes\n' > img.bin
bash "$sign" --cert end.pem --key end.key --out good.smime --body-only good.json --identifier 11111111-2222-3333-4444-555555555555 \
  img.bin=https://127.0.0.1/img.gz,identifier=img-1,version=1
sed 's/"hv:version": "1"/"hv:version": "9"/' good.smime > tampered.smime
for k in other old nosmime; do
  openssl smime -sign -in good.json -signer $k.pem -inkey $k.key -out $k.smime
done
mv other.smime otherca.smime
mv old.smime revoked.smime

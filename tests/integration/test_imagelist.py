"""HEPiX image lists end to end, with a throwaway CA and endorser (tests/imagelist/make-ca.sh:
openssl req/ca), lists signed with `openssl smime -sign` (tools/sign-imagelist.sh), served by
an https server whose certificate the same CA signs. A good list: subscribed, its image fetched
with the list's sha512 and size, byte-identical; an unchanged list costs a 304; then, each
refused with its own error and leaving the accepted list and its images as they were: a
tampered body, an expired list, a rolled-back one, another identifier, the endorser's earlier
certificate revoked by a CRL, a list whose endorser claim is not its signer, a list that is not
JSON, and (another subscription) a signer other than the pinned one. An image with a wrong
sha512 in the list fails its fetch (ChecksumMismatch) while the list stays; numbers written as
strings are accepted. A new version: fetched, the alias moves, the old version is expired
(CreateMachine refuses it) and removed when its last machine goes. Subscriptions persist across
a restart; unsubscribe --remove-images."""
import json, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

ENDORSER = "/DC=org/DC=example/CN=Endorser One/emailAddress=e@example.org"
CA = "/DC=org/DC=example/CN=Test CA"
LIST_ID = "6c0b1a2e-0000-4000-8000-00000000aaaa"


def main():
    ca = tempfile.mkdtemp(prefix="hvwg-il-ca-")
    subprocess.run(["bash", os.path.join(h.SRC, "tests/imagelist/make-ca.sh"), ca], check=True)
    sign = os.path.join(h.SRC, "tools/sign-imagelist.sh")
    conf = {"Fetch": {"CAPath": os.path.join(ca, "ca.pem")}, "Lists": {"CAPath": os.path.join(ca, "cadir")}}
    try:
        with h.Env(conf_extra=conf) as env:
            srv = h.HttpServer(env.src, tls=(os.path.join(ca, "tls.pem"), os.path.join(ca, "tls.key")))
            try:
                run(env, srv, ca, sign)
            finally:
                srv.close()
    finally:
        shutil.rmtree(ca, ignore_errors=True)
    print("PASS test_imagelist")


def run(env, srv, ca, sign):
    a1 = h.gzip_file(h.make_mbr_image(os.path.join(env.src, "alpha1.img"), seed=1), os.path.join(env.src, "alpha1.img.gz"))
    a2 = h.gzip_file(h.make_mbr_image(os.path.join(env.src, "alpha2.img"), seed=2), os.path.join(env.src, "alpha2.img.gz"))
    listpath = os.path.join(env.src, "list.smime")
    url = srv.url + "/cache/list.smime"

    def publish(*images, version="1", created="2026-11-20T10:00:00Z", expires=None, ident=LIST_ID, cert="end", out=listpath,
                extra=()):
        args = ["bash", sign, "--cert", os.path.join(ca, cert + ".pem"), "--key", os.path.join(ca, cert + ".key"), "--out", out,
                "--identifier", ident, "--version", version, "--created", created, "--uri", url, "--title", "test list", *extra]
        if expires:
            args += ["--expires", expires]
        for path, spec in images:
            args.append(f"{path}={srv.url}/f/{os.path.basename(path)},{spec}")
        subprocess.run(args, check=True, capture_output=True)

    def ctl(*a):
        return env.ctl("--verbose", *a)

    def sub_of(sid):
        return [s for s in json.loads(env.ctl("--json", "subscriptions").stdout) if s["id"] == sid][0]

    def images_of(sid):
        return {i["identifier"]: i for i in json.loads(env.ctl("--json", "list-images", sid).stdout)}

    def settle():
        h.check(h.wait_for(lambda: env.call("ListJobs")[0] == [], timeout=120), "the list's jobs end")

    # a good list: subscribed, the image fetched with the list's digest and size
    publish((a1, "identifier=alpha,version=1,title=Alpha"), version="1")
    r = ctl("subscribe", url, "--endorser-dn=" + ENDORSER, "--ca-dn=" + CA, "--auto-fetch", "--name-prefix=t-")
    h.check(r.returncode == 0 and "updated" in r.stdout, "subscribe: the first refresh accepts the list " + r.stdout + r.stderr)
    sid = r.stdout.split()[1].rstrip(":")
    settle()
    h.check("t-alpha-1" in env.images_list(), f"auto_fetch: t-alpha-1 published ({sorted(env.images_list())})")
    h.check(subprocess.run(["cmp", a1[:-3], os.path.join(env.images, "t-alpha-1.raw")]).returncode == 0, "byte-identical")
    meta = open(os.path.join(env.images, "t-alpha-1.meta")).read()
    h.check(f"subscription={sid}" in meta and "list_image=alpha" in meta and "list_version=1" in meta,
            "the image records its subscription")
    imgs = images_of(sid)
    h.check(imgs["alpha"]["state"] == "present" and imgs["alpha"]["alias"] == "t-alpha", f"list-images: present, alias t-alpha: {imgs}")
    s = sub_of(sid)
    h.check(s["list_identifier"] == LIST_ID and s["images"] == 1 and s["last_result"] == "updated", f"subscriptions: {s}")

    # subscriptions are root's; a member of hvwg may read and refresh them
    member = h.hvwg_member()
    r = env.ctl("subscribe", srv.url + "/cache/other.smime", "--endorser-dn=" + ENDORSER, "--ca-dn=" + CA, user=member)
    h.check(r.returncode == 4 and "root only" in r.stderr, "a member of hvwg cannot subscribe: " + r.stderr.strip())
    r = env.ctl("--json", "list-images", sid, user=member)
    h.check(r.returncode == 0 and json.loads(r.stdout)[0]["name"] == "t-alpha-1", "… but may list")

    # unchanged: 304
    before = len(srv.requests["/cache/list.smime"])
    r = env.ctl("refresh", sid, user=member)
    h.check(r.returncode == 0 and "not-modified" in r.stdout, "an unchanged list (refreshed by a member): not modified " + r.stdout +
            r.stderr)
    h.check(srv.seen[-1][1].get("If-None-Match", "").startswith('"') and len(srv.requests["/cache/list.smime"]) == before + 1,
            "a conditional request (If-None-Match)")

    # refusals: each with its own error, the accepted list and the image untouched
    good = open(listpath, "rb").read()

    def refused(what, error, prepare):
        prepare()
        r = ctl("--json", "refresh", sid)
        s = sub_of(sid)
        h.check(r.returncode == 1 and s["last_result"] == "failed" and s["images"] == 1 and s["list_identifier"] == LIST_ID and
                "t-alpha-1" in env.images_list(), f"{what}: refused, nothing changed ({s['last_error']})")
        h.check(error in r.stdout + r.stderr or error in env.log(), f"{what}: {error}")
        return s["last_error"]

    def write(data):
        open(listpath, "wb").write(data)

    refused("a tampered body", "SignatureInvalid", lambda: write(good.replace(b'"t-alpha', b'"x-alpha').replace(b'"Alpha"', b'"Evil!"')))
    refused("an expired list", "ListExpired",
            lambda: publish((a1, "identifier=alpha,version=1"), version="2", created="2019-01-01T00:00:00Z",
                            expires="2020-01-01T00:00:00Z"))
    refused("a rolled-back list", "ListRollback",
            lambda: publish((a1, "identifier=alpha,version=1"), version="0", created="2026-11-19T10:00:00Z"))
    refused("another identifier", "ListIdentifierChanged",
            lambda: publish((a1, "identifier=alpha,version=1"), version="5", ident="6c0b1a2e-0000-4000-8000-00000000bbbb"))
    err = refused("the endorser's revoked certificate", "CertificateRevoked",
                  lambda: publish((a1, "identifier=alpha,version=1"), version="5", cert="old"))
    h.check("revoked" in err, "the message says revoked: " + err)
    refused("a certificate not for S/MIME", "SignatureInvalid", lambda: publish((a1, "identifier=alpha,version=1"), version="5",
                                                                                 cert="nosmime"))

    def claim():
        body = os.path.join(env.src, "claim.json")
        publish((a1, "identifier=alpha,version=1"), version="5", extra=("--body-only", body))
        text = open(body).read().replace(ENDORSER, "/DC=org/DC=example/CN=Somebody Else")
        open(body, "w").write(text)
        subprocess.run(["openssl", "smime", "-sign", "-in", body, "-signer", os.path.join(ca, "end.pem"), "-inkey",
                        os.path.join(ca, "end.key"), "-out", listpath], check=True)
    refused("an endorser claim that is not the signer", "EndorserMismatch", claim)

    def notjson():
        body = os.path.join(env.src, "bad.json")
        open(body, "w").write("this is not { json\n")
        subprocess.run(["openssl", "smime", "-sign", "-in", body, "-signer", os.path.join(ca, "end.pem"), "-inkey",
                        os.path.join(ca, "end.key"), "-out", listpath], check=True)
    refused("a list that is not JSON", "ListInvalid", notjson)

    # another subscription pinned to another endorser
    shutil.copy(listpath, os.path.join(env.src, "list-b.smime"))
    publish((a1, "identifier=alpha,version=1"), version="1", out=os.path.join(env.src, "list-b.smime"))
    r = ctl("subscribe", srv.url + "/cache/list-b.smime", "--endorser-dn=/DC=org/DC=example/CN=Somebody Else", "--ca-dn=" + CA)
    h.check(r.returncode == 1 and "signed by" in r.stderr, "a signer other than the pinned one: EndorserMismatch " + r.stderr.strip())
    other = [s for s in json.loads(env.ctl("--json", "subscriptions").stdout) if s["id"] != sid][0]
    r = ctl("unsubscribe", other["id"])
    h.check(r.returncode == 0, "unsubscribe")

    # a wrong sha512 for one image, numbers as strings: the list is taken, that fetch fails
    publish((a1, "identifier=alpha,version=1,strings"), (a2, "identifier=beta,version=1,strings,sha512=" + "0" * 128),
            version="6", created="2026-11-21T10:00:00Z")
    r = ctl("refresh", sid)
    h.check(r.returncode == 0 and "updated" in r.stdout, "numbers as strings: accepted " + r.stdout + r.stderr)
    settle()
    imgs = images_of(sid)
    h.check(imgs["beta"]["state"] == "absent" and "t-beta-1" not in env.images_list() and "t-alpha-1" in env.images_list(),
            f"a wrong sha512 in the list: that image is not published, the rest stays ({imgs['beta']['state']})")
    h.check("checksum mismatch" in env.log(), "its fetch failed: ChecksumMismatch")

    # the alias: a machine from t-alpha gets version 1
    r = env.ctl("create", "t-alpha", "m1", "--cores=1")
    h.check(r.returncode == 0 and env.call("GetMachine", "s", "m1")[0]["image"]["data"] == "t-alpha-1", "the alias t-alpha: version 1 " +
            r.stderr)

    # a new version: fetched, the alias moves, the old one expires (refused, removed with its last machine)
    publish((a2, "identifier=alpha,version=2"), version="7", created="2026-11-22T10:00:00Z")
    r = ctl("refresh", sid)
    h.check(r.returncode == 0, "version 2 of the list " + r.stderr)
    settle()
    h.check("t-alpha-2" in env.images_list() and "t-alpha-1" in env.images_list(), "version 2 fetched; version 1 kept (m1 uses it)")
    r = ctl("create", "t-alpha-1", "m2", "--cores=1")
    h.check(r.returncode == 1 and "ImageExpired" in r.stderr, "CreateMachine of the expired version: ImageExpired " + r.stderr.strip())
    r = env.ctl("create", "t-alpha", "m3", "--cores=1")
    h.check(r.returncode == 0 and env.call("GetMachine", "s", "m3")[0]["image"]["data"] == "t-alpha-2", "the alias moved to version 2")
    env.ctl("destroy", "m1")
    h.check(h.wait_for(lambda: "t-alpha-1" not in env.images_list(), timeout=20), "version 1 removed when its last machine went")

    # a restart keeps the subscription and its list
    env.stop_daemon()
    env.start_daemon()
    s = sub_of(sid)
    h.check(s["images"] == 1 and s["list_identifier"] == LIST_ID and "t-alpha-2" in env.images_list(), f"after a restart: {s}")
    env.ctl("destroy", "m3")
    r = ctl("unsubscribe", sid, "--remove-images")
    h.check(r.returncode == 0 and h.wait_for(lambda: "t-alpha-2" not in env.images_list(), timeout=20),
            "unsubscribe --remove-images removes its images")
    h.check(json.loads(env.ctl("--json", "subscriptions").stdout) == [] and
            not [f for f in os.listdir(os.path.join(env.images, ".subscriptions"))], "nothing left of it")


if __name__ == "__main__":
    main()

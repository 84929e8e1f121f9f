"""Limits and TLS: https verifies certificates (a self-signed server is refused; trusted through
CAPath it works), a download longer than the given size stops, options are bounded, a non-root
caller has JobsPerUser jobs at most, and queued jobs start in order."""
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    member = h.hvwg_member()
    import shutil, tempfile
    certdir = tempfile.mkdtemp(prefix="hvwg-cert-")
    os.chmod(certdir, 0o755)
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(cert, 0o644)
    for trust in (False, True):
        extra = {"Fetch": {"JobsPerUser": "2", "MaxConcurrent": "1"}}
        if trust:
            extra["Fetch"]["CAPath"] = cert
        with h.Env(conf_extra=extra) as env:
            img = h.make_mbr_image(os.path.join(env.src, "t.img"), mib=16, parts="label: dos\nstart=2048, type=83\n")
            gz = h.gzip_file(img, img + ".gz")
            srv = h.HttpServer(env.src, tls=(cert, key))
            try:
                rc, res, err = env.fetch(srv.url + "/f/t.img.gz", "tls")
                if not trust:
                    msg = (res or {}).get("error_message", err)
                    h.check(rc == 1 and res["error_name"] == E + "FetchFailed" and "certificate" in msg.lower(),
                            "https to a self-signed server is refused: " + msg)
                    continue
                h.check(rc == 0, "https with the server's CA in CAPath works " + err.strip())
            finally:
                srv.close()
            plain = h.HttpServer(env.src)
            try:
                # a download longer than the given size is stopped there
                rc, res, err = env.fetch(plain.url + "/noclen/t.img", "long", size=1000, raw=True)
                msg = (res or {}).get("error_message", err)
                h.check(rc == 1 and res["error_name"] == E + "SizeMismatch" and "longer than the expected 1000 bytes" in msg,
                        "a download longer than size stops: " + msg)
                time.sleep(0.5)
                h.check(plain.sent < os.path.getsize(img), f"  it stopped early ({plain.sent} of {os.path.getsize(img)} bytes sent)")
                # options are bounded
                args = ["FetchImage", "ssa{sv}", "file://" + gz, "many", "33"]
                for i in range(33):
                    args += ["replace", "b", "false"]
                r = env.call(*args, check=False)
                h.check("more than 32 options" in r.stderr, "more than 32 options refused")
                # JobsPerUser for a member of hvwg (non-root); MaxConcurrent=1 keeps them queued in order
                ids = []
                for i in range(2):
                    r = env.call("FetchImage", "ssa{sv}", plain.url + f"/slow/t.img.gz?bps=20000&n={i}", f"q{i}", "0", user=member, check=False)
                    h.check(r.returncode == 0, f"member job {i + 1} accepted")
                    ids.append(json.loads(r.stdout)["data"][0])
                r = env.call("FetchImage", "ssa{sv}", plain.url + "/slow/t.img.gz", "q2", "0", user=member, check=False)
                h.check("JobsPerUser=2" in r.stderr, "the third job of the same user is refused: " + r.stderr.strip())
                jobs = env.call("ListJobs")[0]
                h.check([j[3] for j in jobs] == ["download", "queued"] and [j[0] for j in jobs] == ids,
                        f"MaxConcurrent=1: the first runs, the second waits ({[j[3] for j in jobs]})")
                r = env.call("FetchImage", "ssa{sv}", "file://" + gz, "root-job", "0", check=False)
                h.check(r.returncode == 0, "root is not limited by JobsPerUser")
                for i in ids:
                    env.call("CancelJob", "u", i, user=member)
                h.check(h.wait_for(lambda: env.call("ListJobs") == [[]], timeout=30), "all jobs end")
            finally:
                plain.close()
    shutil.rmtree(certdir, ignore_errors=True)


if __name__ == "__main__":
    main()

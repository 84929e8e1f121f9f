"""Reload (SIGHUP, what `systemctl reload hvwgd` sends): new values apply to new calls and
jobs, a running job goes on, values that cannot change live are logged and kept, and a file
with an error leaves the running configuration in force."""
import os, signal, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    member = h.hvwg_member()
    with h.Env(conf_extra={"Fetch": {"JobsPerUser": "1", "MaxConcurrent": "1"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "r.img"), mib=64)
        h.gzip_file(img, img + ".gz")
        srv = h.HttpServer(env.src)
        try:
            url = srv.url + "/slow/r.img.gz?bps=120000"
            r = env.ctl("--no-wait", "fetch", url, "first", user=member)
            first = int(r.stdout.split()[0])
            r = env.ctl("--no-wait", "fetch", url, "second", user=member)
            h.check(r.returncode != 0 and "JobsPerUser=1" in r.stderr, "JobsPerUser=1 refuses a second job: " + r.stderr.strip())

            def reload(marker_count):
                env.daemon.send_signal(signal.SIGHUP)
                return h.wait_for(lambda: env.log().count("reload:") >= marker_count, 10)

            env.conf_extra["Fetch"]["JobsPerUser"] = "3"
            env.conf_extra["Storage"] = {"ImageRoot": env.tmp + "/elsewhere"}
            env.write_conf()
            h.check(reload(2), "SIGHUP re-reads the configuration")
            log = env.log()
            h.check("ImageRoot cannot change while hvwgd runs" in log and env.prop("ImageRoot") == env.images,
                    "  ImageRoot cannot change live: logged and kept")
            r = env.ctl("--no-wait", "fetch", url, "second", user=member)
            h.check(r.returncode == 0, "  the new JobsPerUser=3 applies to new calls")
            with open(env.conf, "a") as f:
                f.write("this is not a key value line\n")
            h.check(reload(3) and "reload: configuration error, keeping the running configuration" in env.log(),
                    "a file with an error: logged, the running configuration stays")
            r = env.ctl("--no-wait", "fetch", url, "third", user=member)
            h.check(r.returncode == 0, "  JobsPerUser is still 3")
            h.check(env.daemon.poll() is None, "  hvwgd still runs")
            h.check(h.wait_for(lambda: f"job {first} (fetch first) done" in env.log(), 30), "the job that ran across the reloads is done")
            for j in env.call("ListJobs")[0]:
                env.call("CancelJob", "u", j[0])
            h.wait_for(lambda: not env.call("ListJobs")[0], 30)
        finally:
            srv.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Debian package (issue 20, README "Install"): built by `cpack -G DEB` from this build, its
metadata and contents checked, installed with dpkg into a scratch root, and run from there:

- its dependencies resolve with apt (simulated);
- `xpmip --version` and `check-config` of the installed /etc/xpmip configurations, from another
  directory (nothing of the source or build tree is needed);
- the man pages xpmip(8), xpmip-lma(8), xpmip-mag(8) are the binary's --help and the
  configuration reference; bash completion offers the subcommands and `show`'s choices;
- the systemd units say Type=notify, Restart=on-failure, ExecReload (SIGHUP) and the capability
  set; the installed LMA, started in a network namespace with exactly that capability set and a
  NOTIFY_SOCKET of ours, says READY=1 once up, RELOADING=1 / READY=1 at SIGHUP and STOPPING=1 at
  SIGTERM (what systemd reads); the MAG with the same set says READY=1 and STOPPING=1.
"""
import glob
import gzip
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

BUILD = os.environ["XPMIP_BUILD_DIR"]
PREFIX = "xp" + str(os.getpid() % 10000)


def run(*cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xpmip-package-")
        try:
            cls.build_and_install()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)   # (tearDownClass does not run then)
            raise

    @classmethod
    def build_and_install(cls):
        out = os.path.join(cls.tmp, "out")
        run("cpack", "-G", "DEB", "-B", out, cwd=BUILD)
        debs = glob.glob(os.path.join(out, "*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        cls.root = os.path.join(cls.tmp, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
            os.makedirs(os.path.join(cls.root, d))
        open(os.path.join(cls.root, "var/lib/dpkg/status"), "w").close()
        # Into the scratch root (its own dpkg database; the host's libraries satisfy the binary).
        run("dpkg", f"--root={cls.root}", "--force-depends", "--force-script-chrootless", "-i", cls.deb)
        cls.xpmip = os.path.join(cls.root, "usr/sbin/xpmip")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_metadata_and_contents(self):
        info = run("dpkg-deb", "--field", self.deb, "Package", "Version", "Depends", "Section").stdout
        self.assertIn("Package: xpmip", info)
        for lib in ("libbpf1", "libyaml-cpp0.7", "libspdlog1", "libnl-route-3-200", "liblmdb0", "libsystemd0",
                    "iproute2"):
            self.assertIn(lib, info, "declared dependency (dpkg-shlibdeps)")
        files = run("dpkg-deb", "--contents", self.deb).stdout
        for f in ("./usr/sbin/xpmip", "./usr/sbin/xpmip-dp", "./etc/xpmip/lma.yaml", "./etc/xpmip/mag.yaml",
                  "./lib/systemd/system/xpmip-lma@.service", "./lib/systemd/system/xpmip-mag@.service",
                  "./usr/share/man/man8/xpmip.8.gz", "./usr/share/man/man8/xpmip-lma.8.gz",
                  "./usr/share/man/man8/xpmip-mag.8.gz", "./usr/share/bash-completion/completions/xpmip",
                  "./usr/share/doc/xpmip/examples/lma.yaml"):
            self.assertIn(f, files)
        # apt would install it here: every dependency resolves (simulated: nothing is changed).
        sim = run("apt-get", "install", "--simulate", "--no-download", self.deb).stdout
        self.assertIn("Inst xpmip", sim)
        conffiles = run("dpkg-deb", "--info", self.deb, "conffiles").stdout.split()
        self.assertEqual(sorted(conffiles), ["/etc/xpmip/lma.yaml", "/etc/xpmip/mag.yaml"])

    def test_runs_from_the_installed_files_anywhere(self):
        v = run(self.xpmip, "--version", cwd="/").stdout
        self.assertRegex(v, r"^xpmip \d+\.\d+\.\d+ \(git [0-9a-f]+")
        lma = run(self.xpmip, "check-config", os.path.join(self.root, "etc/xpmip/lma.yaml"), cwd="/").stdout
        self.assertIn("valid LMA configuration", lma)
        mag = run(self.xpmip, "check-config", "--role", "mag", os.path.join(self.root, "etc/xpmip/mag.yaml"),
                  cwd="/").stdout
        self.assertIn("valid MAG configuration", mag)

    def test_man_pages_are_the_help_and_the_configuration_reference(self):
        help_text = run(self.xpmip, "lma", "--help").stdout
        with gzip.open(os.path.join(self.root, "usr/share/man/man8/xpmip-lma.8.gz"), "rt") as f:
            page = f.read()
        self.assertIn(".TH XPMIP-LMA \"8\"", page)
        self.assertIn("CONFIGURATION", page)
        self.assertIn("min_delay_before_bce_delete", page, "the configuration reference is in it")
        self.assertIn("keep\\-dataplane", page, "the --help options are in it")
        self.assertIn("keep-dataplane", help_text)
        with gzip.open(os.path.join(self.root, "usr/share/man/man8/xpmip.8.gz"), "rt") as f:
            top = f.read()
        for sub in ("check\\-config", "subscribers", "show"):
            self.assertIn(sub, top)

    def test_bash_completion_offers_subcommands_and_choices(self):
        comp = os.path.join(self.root, "usr/share/bash-completion/completions/xpmip")
        env = dict(os.environ, PATH=os.path.join(self.root, "usr/sbin") + ":" + os.environ["PATH"])

        def complete(*words):
            script = (f"source {comp}; COMP_WORDS=(xpmip {' '.join(words)}); COMP_CWORD={len(words)}; "
                      "_xpmip; echo \"${COMPREPLY[@]}\"")
            return run("bash", "-c", script, env=env).stdout.split()
        self.assertEqual(sorted(complete("ch")), ["check-config"])
        self.assertIn("lma", complete(""))
        self.assertIn("subscribers", complete(""))
        self.assertEqual(sorted(complete("show", "s")), ["sessions", "stats"])
        self.assertIn("--keep-dataplane", complete("lma", "--k"))

    def unit(self, role):
        with open(os.path.join(self.root, f"lib/systemd/system/xpmip-{role}@.service")) as f:
            return dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line and not line.startswith("#"))

    def test_units_and_the_capability_set_they_give_are_enough(self):
        for role in ("lma", "mag"):
            u = self.unit(role)
            self.assertEqual(u["Type"], "notify")
            self.assertEqual(u["Restart"], "on-failure")
            self.assertEqual(u["ExecReload"], "/bin/kill -HUP $MAINPID")
            self.assertEqual(u["ExecStart"], f"/usr/sbin/xpmip {role} -c /etc/xpmip/%i.yaml")
            self.assertNotIn("CAP_SYS_ADMIN", u["CapabilityBoundingSet"])
        caps = self.unit("lma")["CapabilityBoundingSet"].split()
        bounding = "-all," + ",".join("+" + c[4:].lower() for c in caps)
        ns = f"{PREFIX}-pkg"
        state = os.path.join(self.tmp, "state")
        cfg = os.path.join(self.tmp, "lma.yaml")
        with open(cfg, "w") as f:
            f.write(f"""instance: {ns}
state_directory: {state}
lma:
  addresses: [2001:db8:ffff::1]
interfaces:
  - {{name: t0, kind: tunnel}}
  - {{name: c0, kind: core, realm: 1}}
realms:
  - {{id: 1, interface: c0, ipv4_pool: 10.0.0.0/16, ipv6_pool: "2001:db8:a::/48"}}
peers:
  - {{name: mag, addresses: ["2001:db8:ffff::10"]}}
mobile_nodes:
  - {{id: mn1@x, realm: 1}}
""")
        run("ip", "netns", "add", ns)
        notify = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(notify)
        s.settimeout(60)
        p = None

        def start_as_unit(role, config):
            """Root's uid with only the unit's capabilities, as systemd starts it."""
            return subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "setpriv", f"--bounding-set={bounding}",
                                     "--inh-caps=-all", self.xpmip, role, "-c", config], cwd="/",
                                    env=dict(os.environ, NOTIFY_SOCKET=notify), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        try:
            for a, b in (("t0", "t1"), ("c0", "c1")):
                run("ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
                run("ip", "-n", ns, "link", "set", a, "up")
                run("ip", "-n", ns, "link", "set", b, "up")
            run("ip", "-n", ns, "addr", "add", "2001:db8:ffff::1/64", "dev", "t0", "nodad")
            p = start_as_unit("lma", cfg)
            got = s.recv(4096).decode()
            self.assertIn("READY=1", got)
            self.assertIn(f"STATUS=LMA '{ns}' up", got)
            p.send_signal(1)   # SIGHUP
            self.assertIn("RELOADING=1", s.recv(4096).decode())
            self.assertIn("READY=1", s.recv(4096).decode())
            p.terminate()
            self.assertIn("STOPPING=1", s.recv(4096).decode())
            out, _ = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("up:", out)

            # The MAG with the same set (its access links are raw packet sockets too).
            mag_cfg = os.path.join(self.tmp, "mag.yaml")
            with open(mag_cfg, "w") as f:
                f.write(f"""instance: {ns}-m
state_directory: {state}-m
mag:
  addresses: [2001:db8:ffff::10]
  lma: 2001:db8:ffff::1
interfaces:
  - {{name: t1, kind: tunnel}}
  - {{name: c1, kind: access}}
mobile_nodes:
  - {{id: mn1@x, mac: "02:00:00:00:01:01", interface: c1, attach: dynamic}}
""")
            run("ip", "-n", ns, "addr", "add", "2001:db8:ffff::10/64", "dev", "t1", "nodad")
            p = start_as_unit("mag", mag_cfg)
            got = s.recv(4096).decode()
            self.assertIn("READY=1", got)
            self.assertIn(f"STATUS=MAG '{ns}-m' up", got)
            p.terminate()
            self.assertIn("STOPPING=1", s.recv(4096).decode())
            out, _ = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, out)
        finally:
            if p and p.poll() is None:
                p.kill()
                p.wait()
            s.close()
            run("ip", "netns", "del", ns, check=False)
            for inst in (ns, f"{ns}-m"):
                run(os.path.join(self.root, "usr/sbin/xpmip-dp"), "-i", inst, "unload", check=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)

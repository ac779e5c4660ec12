//! The main commands' whole output, stdout and stderr, compared as a
//! whole (snapbox; `[..]` stands for what varies: times, the temp root):
//! a stray or missing line fails, unlike a `contains` check.
//! `SNAPSHOTS=overwrite cargo test --test it output::` rewrites them.

use snapbox::{str, IntoData};

use crate::util::*;

/// `actual` is `expected` as a whole (`[..]` matches within a line). Paths
/// are compared as they are: snapbox would otherwise turn `\` into `/`,
/// which JSON escapes use.
#[track_caller]
fn assert_data_eq(actual: String, expected: impl IntoData) {
    snapbox::Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .normalize_paths(false)
        .eq(actual, expected);
}

/// stdout and stderr of `args` on `tree`, with its exit code.
fn run(tree: &Tree, args: &[&str]) -> (Option<i32>, String, String) {
    outcome(&tree.cmd(args).output().unwrap())
}

#[test]
fn plan_on_a_stock_host() {
    let tree = Tree::stock();
    let (code, stdout, stderr) = run(&tree, &["plan", "--podman-version", "4.3.1"]);
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
create /etc/containers/containers.conf.d/99-nvidia.conf
  # set [engine.runtimes] nvidia = ["/usr/bin/nvidia-container-runtime"]
--- /dev/null
+++ b/etc/containers/containers.conf.d/99-nvidia.conf
@@ -0,0 +1,8 @@
+# Managed by gpu-setup: the NVIDIA OCI runtime for Podman.
+# Podman 3.3 and later merge this drop-in over their other containers.conf
+# files (older Podman reads no drop-ins: gpu-setup edits
+# /etc/containers/containers.conf there instead).
+# `gpu-setup apply` keeps the runtime entry below as configured; other
+# settings you add here are kept.
+[engine.runtimes]
+nvidia = ["/usr/bin/nvidia-container-runtime"]

modify /etc/nvidia-container-runtime/config.toml
  # set [nvidia-container-cli] no-cgroups = true
--- a/etc/nvidia-container-runtime/config.toml
+++ b/etc/nvidia-container-runtime/config.toml
@@ -10,7 +10,7 @@
 #debug = "/var/log/nvidia-container-toolkit.log"
 #ldcache = "/etc/ld.so.cache"
 load-kmods = true
-#no-cgroups = false
+no-cgroups = true
 #user = "root:video"
 ldconfig = "@/sbin/ldconfig.real"
 

create /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
  # install the NVIDIA OCI hook running `/usr/bin/nvidia-container-toolkit`
--- /dev/null
+++ b/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
@@ -0,0 +1,15 @@
+{
+    "version": "1.0.0",
+    "hook": {
+        "path": "/usr/bin/nvidia-container-toolkit",
+        "args": ["nvidia-container-toolkit", "prestart"],
+        "env": [
+            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
+        ]
+    },
+    "when": {
+        "always": true,
+        "commands": [".*"]
+    },
+    "stages": ["prestart"]
+}

Plan: 2 to create, 1 to modify, 0 to delete.

"#]],
    );
    assert_data_eq(
        stderr,
        str![[r#"
info[no-cgroups-rootful]: `no-cgroups = true` is for rootless Podman; it breaks GPU access in rootful containers
  hint: use --no-cgroups false on hosts that run GPU containers as root

"#]],
    );
}

#[test]
fn apply_then_apply_again_then_history_and_rollback() {
    let tree = Tree::stock();
    let (code, stdout, stderr) = run(&tree, &["apply", "--podman-version", "4.3.1"]);
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
create /etc/containers/containers.conf.d/99-nvidia.conf
  # set [engine.runtimes] nvidia = ["/usr/bin/nvidia-container-runtime"]
--- /dev/null
+++ b/etc/containers/containers.conf.d/99-nvidia.conf
@@ -0,0 +1,8 @@
+# Managed by gpu-setup: the NVIDIA OCI runtime for Podman.
+# Podman 3.3 and later merge this drop-in over their other containers.conf
+# files (older Podman reads no drop-ins: gpu-setup edits
+# /etc/containers/containers.conf there instead).
+# `gpu-setup apply` keeps the runtime entry below as configured; other
+# settings you add here are kept.
+[engine.runtimes]
+nvidia = ["/usr/bin/nvidia-container-runtime"]

modify /etc/nvidia-container-runtime/config.toml
  # set [nvidia-container-cli] no-cgroups = true
--- a/etc/nvidia-container-runtime/config.toml
+++ b/etc/nvidia-container-runtime/config.toml
@@ -10,7 +10,7 @@
 #debug = "/var/log/nvidia-container-toolkit.log"
 #ldcache = "/etc/ld.so.cache"
 load-kmods = true
-#no-cgroups = false
+no-cgroups = true
 #user = "root:video"
 ldconfig = "@/sbin/ldconfig.real"
 

create /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
  # install the NVIDIA OCI hook running `/usr/bin/nvidia-container-toolkit`
--- /dev/null
+++ b/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
@@ -0,0 +1,15 @@
+{
+    "version": "1.0.0",
+    "hook": {
+        "path": "/usr/bin/nvidia-container-toolkit",
+        "args": ["nvidia-container-toolkit", "prestart"],
+        "env": [
+            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
+        ]
+    },
+    "when": {
+        "always": true,
+        "commands": [".*"]
+    },
+    "stages": ["prestart"]
+}

Plan: 2 to create, 1 to modify, 0 to delete.
Applied transaction 1: 2 created, 1 modified. Undo with `gpu-setup rollback 1`.

"#]],
    );
    assert_data_eq(
        stderr,
        str![[r#"
info[no-cgroups-rootful]: `no-cgroups = true` is for rootless Podman; it breaks GPU access in rootful containers
  hint: use --no-cgroups false on hosts that run GPU containers as root

"#]],
    );
    let (code, stdout, stderr) = run(&tree, &["apply", "--podman-version", "4.3.1"]);
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
The host is configured: nothing to change.

"#]],
    );
    assert_data_eq(stderr, str![]);
    let (code, stdout, stderr) = run(&tree, &["history"]);
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
  ID  TIME                  USER          KIND              STATUS
   1  [..]Z  [..]  apply             applied
        create  /etc/containers/containers.conf.d/99-nvidia.conf
        modify  /etc/nvidia-container-runtime/config.toml
        create  /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json

"#]],
    );
    assert_data_eq(stderr, str![]);
    let (code, stdout, stderr) = run(&tree, &["rollback"]);
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
delete /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
--- a/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json
+++ /dev/null
@@ -1,15 +0,0 @@
-{
-    "version": "1.0.0",
-    "hook": {
-        "path": "/usr/bin/nvidia-container-toolkit",
-        "args": ["nvidia-container-toolkit", "prestart"],
-        "env": [
-            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
-        ]
-    },
-    "when": {
-        "always": true,
-        "commands": [".*"]
-    },
-    "stages": ["prestart"]
-}

modify /etc/nvidia-container-runtime/config.toml
--- a/etc/nvidia-container-runtime/config.toml
+++ b/etc/nvidia-container-runtime/config.toml
@@ -10,7 +10,7 @@
 #debug = "/var/log/nvidia-container-toolkit.log"
 #ldcache = "/etc/ld.so.cache"
 load-kmods = true
-no-cgroups = true
+#no-cgroups = false
 #user = "root:video"
 ldconfig = "@/sbin/ldconfig.real"
 

delete /etc/containers/containers.conf.d/99-nvidia.conf
--- a/etc/containers/containers.conf.d/99-nvidia.conf
+++ /dev/null
@@ -1,8 +0,0 @@
-# Managed by gpu-setup: the NVIDIA OCI runtime for Podman.
-# Podman 3.3 and later merge this drop-in over their other containers.conf
-# files (older Podman reads no drop-ins: gpu-setup edits
-# /etc/containers/containers.conf there instead).
-# `gpu-setup apply` keeps the runtime entry below as configured; other
-# settings you add here are kept.
-[engine.runtimes]
-nvidia = ["/usr/bin/nvidia-container-runtime"]

Rolled back transaction 1 as transaction 2: 1 modified, 2 deleted.

"#]],
    );
    assert_data_eq(stderr, str![]);
}

#[test]
fn plan_json_on_a_stock_host() {
    let tree = Tree::stock();
    let (code, stdout, stderr) = run(
        &tree,
        &["plan", "--podman-version", "4.3.1", "--format", "json"],
    );
    assert_eq!(code, Some(0));
    assert_data_eq(
        stdout,
        str![[r#"
{"changed":true,"files":[{"path":"/etc/containers/containers.conf.d/99-nvidia.conf","action":"create","before_sha256":null,"after_sha256":"5efc4f9421eee01d60d6958bb0a6b9af7fc2299a0fd2acd37c64e3959dc0409e","reasons":["set [engine.runtimes] nvidia = [\"/usr/bin/nvidia-container-runtime\"]"],"diff":"--- /dev/null\n+++ b/etc/containers/containers.conf.d/99-nvidia.conf\n@@ -0,0 +1,8 @@\n+# Managed by gpu-setup: the NVIDIA OCI runtime for Podman.\n+# Podman 3.3 and later merge this drop-in over their other containers.conf\n+# files (older Podman reads no drop-ins: gpu-setup edits\n+# /etc/containers/containers.conf there instead).\n+# `gpu-setup apply` keeps the runtime entry below as configured; other\n+# settings you add here are kept.\n+[engine.runtimes]\n+nvidia = [\"/usr/bin/nvidia-container-runtime\"]\n"},{"path":"/etc/nvidia-container-runtime/config.toml","action":"modify","before_sha256":"2b6d1910c0e5b331deb14fcb44ff96a7627c4bb02f609c2a92673abb028891c1","after_sha256":"10d0d8c4f1eb0d7e4176013894e65178d1d9854a0962f54fb6e326ca54d5db65","reasons":["set [nvidia-container-cli] no-cgroups = true"],"diff":"--- a/etc/nvidia-container-runtime/config.toml\n+++ b/etc/nvidia-container-runtime/config.toml\n@@ -10,7 +10,7 @@\n #debug = \"/var/log/nvidia-container-toolkit.log\"\n #ldcache = \"/etc/ld.so.cache\"\n load-kmods = true\n-#no-cgroups = false\n+no-cgroups = true\n #user = \"root:video\"\n ldconfig = \"@/sbin/ldconfig.real\"\n \n"},{"path":"/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json","action":"create","before_sha256":null,"after_sha256":"ec8640164a5a3a1bd06c96a4b2aa2b951bbcf6db2e803ab0a4b4e504c5cedbad","reasons":["install the NVIDIA OCI hook running `/usr/bin/nvidia-container-toolkit`"],"diff":"--- /dev/null\n+++ b/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json\n@@ -0,0 +1,15 @@\n+{\n+    \"version\": \"1.0.0\",\n+    \"hook\": {\n+        \"path\": \"/usr/bin/nvidia-container-toolkit\",\n+        \"args\": [\"nvidia-container-toolkit\", \"prestart\"],\n+        \"env\": [\n+            \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n+        ]\n+    },\n+    \"when\": {\n+        \"always\": true,\n+        \"commands\": [\".*\"]\n+    },\n+    \"stages\": [\"prestart\"]\n+}\n"}],"warnings":[{"code":"no-cgroups-rootful","level":"info","message":"`no-cgroups = true` is for rootless Podman; it breaks GPU access in rootful containers","hint":"use --no-cgroups false on hosts that run GPU containers as root"}],"packages":[]}

"#]],
    );
    assert_data_eq(stderr, str![]);
}

#[test]
fn errors_a_bad_setting_and_malformed_toml() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    let (code, stdout, stderr) = run(&tree, &["plan", "--hook-file", "/etc/sudoers.d/x"]);
    assert_same(&tree.snapshot(), &before);
    assert_eq!(code, Some(1));
    assert_data_eq(stdout, str![]);
    assert_data_eq(
        stderr,
        str![[r#"
error: invalid hook file: `/etc/sudoers.d/x` does not end in `.json`: Podman reads only `*.json` hook files
hint: see `gpu-setup plan --help` for the accepted values

"#]],
    );
    tree.write(NV_CONFIG, "[nvidia-container-cli]\nno-cgroups = = true\n");
    let before_toml = tree.snapshot();
    let (code, stdout, stderr) = run(&tree, &["apply"]);
    assert_eq!(code, Some(1));
    assert_data_eq(stdout, str![]);
    assert_data_eq(
        stderr,
        str![[r#"
error: `/etc/nvidia-container-runtime/config.toml` line 2, column 14: extra `=`, expected nothing
hint: fix the TOML syntax in `/etc/nvidia-container-runtime/config.toml` (the NVIDIA Container Toolkit rejects it too), then run gpu-setup again

"#]],
    );
    assert_same(&tree.snapshot(), &before_toml);
    let (code, stdout, stderr) = run(&tree, &["plan", "--strategy", "magic"]);
    assert_eq!(code, Some(1));
    assert_data_eq(stdout, str![]);
    assert_data_eq(
        stderr,
        str![[r#"
error: invalid value 'magic' for '--strategy <STRATEGY>'
  [possible values: hook, cdi]

For more information, try '--help'.

"#]],
    );
}

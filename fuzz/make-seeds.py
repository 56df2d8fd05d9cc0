#!/usr/bin/env python3
"""Writes the structure-aware seed corpora of the fuzz targets into fuzz/seeds/<target>/.

- scenario: the built-in scenarios (scenarios/*.yaml) and variations of them, one per feature of the
  format (bare steps, settle both ways, shell forms, duration sums, brace escapes, block scalars, flow
  style, CRLF, BOM) and one per kind of error docs/scenarios.md lists.
- adb_wire: reply streams as the adb server sends them (OKAY/FAIL with hex4 lengths, `host:version`,
  `host:devices-l`, `features`, `get-state`, transport + service OKAYs followed by shell v2 packets or
  legacy output), each prefixed with the target's two control bytes (see fuzz_targets/adb_wire.rs).
- parcel: `service call iphonesubinfo N` replies in libbinder's Parcel print format (one-line,
  multi-line, null string, exceptions, `Error:`, `NULL`, CRLF), raw (control byte 0x00), plus
  structured descriptions (odd control byte, see fuzz_targets/parcel.rs).

Deterministic; run from anywhere: python3 fuzz/make-seeds.py
"""
import os
import struct
import glob

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)


def write(target, name, data):
    d = os.path.join(FUZZ, "seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- scenario ------------------------------------------------------------------------------------------

def scenario_seeds():
    builtins = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.yaml"))):
        text = open(path).read()
        name = os.path.basename(path)[:-5]
        builtins[name] = text
        write("scenario", "builtin-" + name, text)
    sms = builtins["send-sms"]
    head = "name: t\nidentifiers:\n  contact_name: Wei Ling Tan\n  contact_phone: \"+6598765432\"\n" \
           "  sms_body: \"tattle canary {run_id}\"\nsteps:\n"
    variants = {
        # accepted forms
        "bare-steps": "name: bare\nsteps:\n  - fresh-setup\n  - idle: 1m30s\n",
        "settle-beside": head + "  - add-contact: { name: \"{contact_name}\", phone: \"{contact_phone}\" }\n"
                                "    settle: 10s\n  - idle: 500ms\n",
        "settle-inside": head + "  - fresh-setup: { settle: 10s }\n  - send-sms: { to: \"{contact_phone}\", "
                                "body: \"{sms_body}\", settle: 1m }\n",
        "shell-forms": "name: sh\nsteps:\n  - shell: getprop ro.build.fingerprint\n"
                       "  - shell: { command: \"awk '{print $1}' /proc/version\", expect_exit: 0 }\n"
                       "  - shell:\n      command: \"echo {{literal}} {run_id}\"\n      expect_exit: 255\n",
        "block-scalars": head + "  - send-sms:\n      to: \"{contact_phone}\"\n      body: |\n"
                                "        line one {sms_body}\n        line two\n"
                                "  - shell: >\n      settings put global\n      device_provisioned 1\n",
        "flow-style": "{name: flow, steps: [fresh-setup, {idle: 2s}, {shell: id}]}\n",
        "durations": "name: d\nsteps:\n  - idle: 1h\n  - idle: 23h59m59s\n  - idle: 0s\n  - idle: 999ms\n",
        "quoted-keys": "\"name\": 'q'\n\"steps\":\n  - \"idle\": '5s'\n  - 'fresh-setup': ~\n",
        "no-name": "description: |\n  no name: the file name is used\nsteps:\n  - idle: 1s\n",
        "comments": "# c\nname: c # trailing\n\nsteps: # list\n  # between\n  - idle: 1s # x\n...\n",
        "crlf": sms.replace("\n", "\r\n"),
        "bom": "\ufeff" + builtins["fresh-setup"],
        "document-start": "%YAML 1.2\n---\n" + builtins["add-contact"],
        "unicode": "name: u\nidentifiers:\n  contact_name: \"Zoë Ølstrup 张伟 🙂\"\nsteps:\n"
                   "  - add-contact: { name: \"{contact_name}\", phone: \"+33 6 12 34 56 78\" }\n",
        "escapes": "name: e\nidentifiers:\n  sms_body: \"tab\\there \\u00e9 \\x41 {run_id}\"\nsteps:\n"
                   "  - send-sms: { to: \"+1\", body: \"{sms_body}\" }\n",
        # rejected: one per check
        "err-typo-step": sms.replace("- send-sms:", "- send-smss:"),
        "err-typo-key": "name: t\ndescriptoin: x\nsteps:\n  - idle: 1s\n",
        "err-step-at-top": "name: t\nsteps:\n  - idle: 1s\nsend-sms: {}\n",
        "err-tab": "name: t\nsteps:\n\t- idle: 1s\n",
        "err-indent": "name: t\nsteps:\n  - idle: 5s\n - idle: 1s\n",
        "err-unclosed": "name: t\nsteps:\n  - add-contact: { name: a, phone: b\n",
        "err-duplicate": "name: t\nname: u\nsteps:\n  - idle: 1s\n",
        "err-two-steps": "name: t\nsteps:\n  - idle: 1s\n    fresh-setup: {}\n",
        # UI steps, `any` and `via`
        "ui-steps": head + "  - launch: com.android.messaging\n"
                           "  - launch: { action: android.intent.action.SENDTO, data: \"sms:{contact_phone}\", "
                           "extras: { sms_body: \"{sms_body}\" } }\n"
                           "  - wait-for: { resource-id: \"com.android.messaging:id/compose_message_text\", timeout: 20s }\n"
                           "  - type: { text: \"{sms_body}\", into: { resource-id: compose_message_text } }\n"
                           "  - tap: { content-desc: \"Send SMS\" }\n  - key: [DPAD_RIGHT, keycode_enter]\n"
                           "  - toggle: { wifi: off, mobile-data: on, airplane: off }\n  - install: apps/t.apk\n"
                           "  - reboot: { timeout: 5m }\n"
                           "  - send-sms: { to: \"{contact_phone}\", body: \"{sms_body}\", via: [ui, keys] }\n"
                           "  - add-contact: { name: \"{contact_name}\", phone: \"{contact_phone}\", via: provider }\n",
        "ui-any": "name: a\nsteps:\n  - any:\n      - tap: { text: Send }\n      - steps:\n"
                  "          - key: DPAD_RIGHT\n          - key: ENTER\n    settle: 3s\n",
        "err-ui-key": "name: t\nsteps:\n  - key: [HOME, ENTRE, 66]\n",
        "err-ui-selectors": "name: t\nsteps:\n  - tap: { text: a, content-desc: b }\n  - wait-for: { timeout: 0s }\n",
        "err-ui-any": "name: t\nsteps:\n  - any:\n      - any: [reboot, idle]\n  - toggle: { wfi: maybe }\n"
                      "  - type: \"Zo\u00eb\"\n  - install: x.zip\n  - send-sms: { to: a, body: b, via: [ui, ui] }\n",
        "err-alias": "name: t\nx: &a 1s\nsteps:\n  - idle: *a\n",
        "err-second-doc": "name: t\nsteps:\n  - idle: 1s\n---\nname: u\n",
        "err-missing-steps": "name: t\n",
        "err-empty-steps": "name: t\nsteps: []\n",
        "err-steps-string": "name: t\nsteps: idle\n",
        "err-durations": "name: t\nsteps:\n  - idle: 5\n  - idle: 5 sec\n  - idle: 25h\n  - idle: 1.5s\n"
                         "  - fresh-setup: { settle: x }\n  - idle: 99999999999999999999s\n",
        "err-placeholders": "name: t\nidentifiers:\n  a: \"x {b}\"\n  b: yyyy\nsteps:\n"
                            "  - send-sms: { to: \"{contact_phnoe}\", body: \"{c} {run_id}\" }\n",
        "err-identifiers": "name: t\nidentifiers:\n  Contact-Name: x\n  run_id: x\n  sms_body: \"\"\n"
                           "  short: hi\nsteps:\n  - idle: 1s\n",
        "err-name": "name: Send SMS!\nsteps:\n  - idle: 1s\n",
        "err-missing-fields": "name: t\nsteps:\n  - add-contact: { name: x }\n  - send-sms: {}\n"
                              "  - shell: { expect_exit: 300 }\n  - idle:\n",
        "err-types": "name: [a]\ndescription: {a: b}\nidentifiers: [x]\nsteps:\n  - [idle]\n"
                     "  - add-contact: {name: {a: b}, phone: [1]}\n  - fresh-setup: now\n",
        "err-settle": "name: t\nsteps:\n  - idle: 1s\n    settle: 2s\n  - fresh-setup: { settle: 1s }\n"
                      "    settle: 2s\n",
        "err-control": "name: t\nsteps:\n  - \"send\\e[31m-sms\": {}\n  - idle: \"\\x07\"\n",
        "err-not-mapping": "- idle: 1s\n",
        "err-empty": "",
        "err-comment-only": "# nothing\n",
        "err-cr-only": sms.replace("\n", "\r").replace("send-sms:", "send-smss:"),
        "err-deep": "name: t\nsteps:\n  - shell: " + "[" * 40 + "\n",
    }
    for name, text in variants.items():
        write("scenario", name, text)


# ---- adb_wire ------------------------------------------------------------------------------------------

def hex4(body):
    if isinstance(body, str):
        body = body.encode()
    return b"%04x" % len(body) + body


def packet(pid, data):
    return bytes([pid]) + struct.pack("<I", len(data)) + data


def adb_wire_seeds():
    # Control bytes: byte 0 = exchange (0 query, 1 device query, 2 shell v2, 3 to-end with limit
    # (byte0 >> 2) * 8), byte 1 = number of chunk bytes that follow.
    whole = b"\x00"
    ones = b"\x01\x00"          # one chunk byte: reads of 1
    odd = b"\x03\x06\x82\x1f"    # reads of 7, pending + 3, 32
    devices = ("emulator-5554          device product:sdk_gphone64_x86_64 model:sdk_gphone64_x86_64 "
               "device:emu64xa transport_id:1\n127.0.0.1:7001         device product:kestrel "
               "model:Note_7_Lite device:kestrel transport_id:3\n0123456789ABCDEF       unauthorized "
               "usb:1-1 transport_id:4\nR58M12345   no permissions (missing udev rules?); see "
               "[http://developer.android.com/tools/device.html] usb:1-2 transport_id:5\n")
    queries = {
        "version": b"OKAY" + hex4("0029"),
        "devices-l": b"OKAY" + hex4(devices),
        "devices-empty": b"OKAY0000",
        "connect": b"OKAY" + hex4("connected to 127.0.0.1:7001"),
        "connect-failed": b"OKAY" + hex4("failed to connect to '127.0.0.1:7001': Connection refused"),
        "fail-unknown": b"FAIL" + hex4("unknown host service"),
        "body-short": b"OKAY0010abc",
        "hex-upper": b"OKAY000CHOST:VERSION",
        "garbage": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    }
    for name, s in queries.items():
        write("adb_wire", "query-" + name, b"\x00" + whole + s)
        write("adb_wire", "query-" + name + "-ones", b"\x00" + ones + s)
    device = {
        "features": b"OKAY" + hex4("shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,"
                                   "fixed_push_symlink_timestamp,abb_exec,remount_shell,"
                                   "track_app,sendrecv_v2,sendrecv_v2_brotli,sendrecv_v2_lz4,"
                                   "sendrecv_v2_zstd,sendrecv_v2_dry_run_send,openscreen_mdns"),
        "get-state": b"OKAY" + hex4("device"),
        "not-found": b"FAIL" + hex4("device '127.0.0.1:7001' not found"),
        "no-devices": b"FAIL" + hex4("no devices/emulators found"),
        "offline": b"FAIL" + hex4("device offline"),
        "unauthorized": b"FAIL" + hex4("device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS "
                                       "is not set\nTry 'adb kill-server' if that seems wrong.\n"
                                       "Otherwise check for a confirmation dialog on your device."),
        "authorizing": b"FAIL" + hex4("device still authorizing"),
        "escape": b"FAIL" + hex4(b"bad\x1b[31mred\x07\r\n"),
    }
    for name, s in device.items():
        write("adb_wire", "device-" + name, b"\x01" + whole + s)
        write("adb_wire", "device-" + name + "-odd", b"\x01" + odd + s)
    ok2 = b"OKAYOKAY"
    shells = {
        "getprop": ok2 + packet(1, b"Kestrel Note 7 Lite\n") + packet(3, b"\x00"),
        "stderr-exit1": ok2 + packet(1, b"") + packet(2, b"/system/bin/sh: nope: not found\n")
                        + packet(3, b"\x7f"),
        "window-stdin": ok2 + packet(5, b"\x00\x18\x00\x50\x00\x00\x00\x00") + packet(0, b"x")
                        + packet(4, b"") + packet(1, b"ok\n") + packet(3, b"\x00") + b"trailing",
        "service-call": ok2 + packet(1, b"Result: Parcel(\n  0x00000000: 00000000 0000000f 00350033 "
                                        b"00380039 '........3.5.9.8.'\n)\n") + packet(3, b"\x00"),
        "no-exit": ok2 + packet(1, b"partial"),
        "bad-exit": ok2 + packet(3, b"\x01\x02"),
        "bad-id": ok2 + packet(9, b"?"),
        "huge-length": ok2 + b"\x01\xff\xff\xff\xffabc",
        "refused": b"OKAY" + b"FAIL" + hex4("closed"),
        "transport-fail": b"FAIL" + hex4("device '127.0.0.1:7001' not found"),
    }
    for name, s in shells.items():
        write("adb_wire", "shell-" + name, b"\x02" + whole + s)
        write("adb_wire", "shell-" + name + "-ones", b"\x02" + ones + s)
        write("adb_wire", "shell-" + name + "-odd", b"\x02" + odd + s)
    legacy = {
        "legacy-shell": ok2 + b"Kestrel Note 7 Lite\r\n",
        "reboot": ok2,
        "too-large": ok2 + b"x" * 600,
        "refused": b"OKAYFAIL" + hex4("closed"),
    }
    for name, s in legacy.items():
        write("adb_wire", "toend-" + name, bytes([0x03 | (63 << 2)]) + whole + s)
        write("adb_wire", "toend-" + name + "-small", bytes([0x03 | (2 << 2)]) + odd + s)


# ---- parcel --------------------------------------------------------------------------------------------

def string_reply(value, exception=0, null=False):
    p = struct.pack("<i", exception)
    if null:
        return p + struct.pack("<i", -1)
    units = value.encode("utf-16-le")
    p += struct.pack("<i", len(units) // 2) + units + b"\x00\x00"
    while len(p) % 4:
        p += b"\x00"
    return p


def hex_dump(data, indent="  "):
    """libbinder's printHexData as `service call` uses it: 16 bytes a line, 4-byte words shown as
    little-endian values, one line without offsets up to 16 bytes, an ASCII column."""
    one_line = len(data) <= 16
    out = "" if one_line else "\n"
    lines = [data[i:i + 16] for i in range(0, len(data), 16)]
    for n, line in enumerate(lines):
        if not one_line:
            out += indent + "0x%08x: " % (n * 16)
        words = []
        for w in range(0, 16, 4):
            chunk = line[w:w + 4]
            if chunk:
                words.append("".join("%02x" % b for b in reversed(chunk)).ljust(8 if not one_line else 0))
            elif not one_line:
                words.append(" " * 8)
            else:
                words.append("")
        out += " ".join(words) + " '"
        out += "".join(chr(b) if 32 <= b < 127 else "." for b in line)
        if not one_line:
            out += " " * (16 - len(line))
        out += "'"
        if n + 1 < len(lines):
            out += "\n"
    return out


def result(data):
    return "Result: Parcel(%s)\n" % (hex_dump(data) if data else "NULL")


def parcel_seeds():
    raw = {
        "imei": result(string_reply("359881234567890")),
        "imei-crlf": result(string_reply("359881234567890")).replace("\n", "\r\n"),
        "msisdn": result(string_reply("+6598765432")),
        "iccid": result(string_reply("8965012345678901234")),
        "imsi": result(string_reply("525011234567890")),
        "empty-string": result(string_reply("")),
        "short-one-line": result(string_reply("ab")),
        "non-ascii": result(string_reply("Zoë 张伟")),
        "null-string": result(string_reply("", null=True)),
        "security-exception": result(string_reply("getDeviceId: Neither user 2000 nor current process "
                                                  "has android.permission.READ_PRIVILEGED_PHONE_STATE.",
                                                  exception=-1)),
        "exception-no-message": result(struct.pack("<ii", -1, -1)),
        "fat-header": result(struct.pack("<iii", -128, 0, 0) + string_reply("1")),
        "error": "Result: Parcel(Error: 0xffffffb5 \"Not a data message\")\n",
        "null-parcel": "Result: Parcel(NULL)\n",
        "no-service": "service: Service iphonesubinfo does not exist\n",
        "objects": result(string_reply("359881234567890"))[:-2] + "\nObject #0 @ 0x0: BINDER = 0x7f12345678)\n",
    }
    for name, text in raw.items():
        write("parcel", "raw-" + name, b"\x00" + text.encode())
    # Structured: control byte (bit 0 set), two head bytes, the string's bytes.
    structured = {
        "string": (0x01, b"\x00\x00", b"359881234567890"),
        "string-long": (0x81, b"\x00\x00", b"+6598765432"),
        "string-crlf": (0x09, b"\x00\x00", b"8965012345678901234"),
        "string-stray": (0x11, b"\x02\x03", b"359881234567890"),
        "string-trailer": (0x21, b"\x07\x09", b"525011234567890"),
        "units": (0x41, b"\x00\x00", "Zoë".encode("utf-16-le") + b"\x00\xd8"),
        "null": (0x03, b"\x00\x00", b""),
        "exception": (0x05, b"\x00\x00", b"Neither user 2000 nor current process has permission"),
        "exception-fat": (0x05, b"\x0b\x00", b"1"),
        "error-forms": (0x07, b"\x01\x00", b""),
        "error-hexwords": (0x47, b"\x02\x00", b"\x00\x00\x00\x00\x01\x00\x41\x00"),
    }
    for name, (control, head, body) in structured.items():
        write("parcel", "st-" + name, bytes([control]) + head + body)


if __name__ == "__main__":
    scenario_seeds()
    adb_wire_seeds()
    parcel_seeds()

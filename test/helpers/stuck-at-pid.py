#!/usr/bin/env python3
# Run by an UNPRIVILEGED user under `unshare -Urm`: make a process with a chosen pid (pid_max is 32768,
# so cycling the pid space takes seconds) that is alive with SIGKILL pending, as a killed card stuck on its
# own FUSE mount looks: a FUSE mount of the user's own (FUSE is mountable in a user namespace) whose
# server reads a LOOKUP and never answers; the client at pid P is SIGKILLed after the request was read,
# so the kernel waits uninterruptibly (request_wait_answer's final wait_event) with SIGKILL pending.
import ctypes, os, signal, struct, sys, tempfile, time
target = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
mnt = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix='b2stall-')  # the caller's directory, which the caller removes
fd = os.open('/dev/fuse', os.O_RDWR)
opts = f'fd={fd},rootmode=40000,user_id=0,group_id=0'.encode()
if libc.mount(b'b2stall', mnt.encode(), b'fuse', 0, opts) != 0:
    sys.exit(f'mount: {os.strerror(ctypes.get_errno())}')
held_r, held_w = os.pipe()
srv = os.fork()
if srv == 0:
    buf = os.read(fd, 1 << 20)
    ln, op, unique = struct.unpack_from('<IIQ', buf)
    init = struct.pack('<IIIIHHIIHHI', 7, 31, 0, 0, 0, 0, 4096, 0, 1, 0, 0).ljust(64, b'\0')
    os.write(fd, struct.pack('<IiQ', 16 + len(init), 0, unique) + init)
    held = os.read(fd, 1 << 20)  # the client's request: read, never answered
    print(f'server: holding opcode {struct.unpack_from("<I", held, 4)[0]}', flush=True)
    os.write(held_w, b'x')
    while True: time.sleep(3600)
os.close(fd)
tries = 0
# Root (the test) may shortcut the cycle through ns_last_pid; a user just cycles (pid_max 32768: seconds).
shortcut = os.access('/proc/sys/kernel/ns_last_pid', os.W_OK)
while True:
    if shortcut:
        with open('/proc/sys/kernel/ns_last_pid', 'w') as f: f.write(str(target - 1))
    pid = os.fork()
    if pid == 0:
        if os.getpid() == target:
            os.stat(os.path.join(mnt, 'x'))  # LOOKUP: the server reads it and never answers
        os._exit(0)
    tries += 1
    if pid == target: break
    os.waitpid(pid, 0)
    if tries > 200000: sys.exit('pid not reached')
os.read(held_r, 1)  # the server has read the child's request: from now on the child waits uninterruptibly
os.kill(target, signal.SIGKILL)
st = open(f'/proc/{target}/status').read()
state = [l for l in st.splitlines() if l.startswith(('State', 'SigPnd', 'ShdPnd'))]
print(f'pid {target} after {tries} forks: {state}', flush=True)
while True: time.sleep(3600)

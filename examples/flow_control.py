"""Active once and active N: a consumer that takes datagrams only as fast as it handles them.

With ``active="once"`` the socket delivers one datagram and turns passive; the consumer re-arms
it when it is ready for the next. With ``active=N`` it delivers N, then ``("udp_passive", sock)``.
Meanwhile the rest wait in the kernel, and a Unix-domain sender waits for room: nothing piles up
in the mailbox, nothing is lost.
"""

import os
import tempfile
import threading

import genudp


def main() -> tuple[list[int], int]:
    path = os.path.join(tempfile.mkdtemp(), "consumer.sock")
    sock = genudp.open(path=path, active=3)
    total = 30

    def produce() -> None:
        with genudp.open(family="local", active=False) as tx:
            for n in range(total):
                tx.send(b"%d" % n, path)  # waits while the consumer's queue is full

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[int] = []
    rearmed = 0
    mode: genudp.Active = 3
    while len(got) < total:
        match genudp.receive(timeout=10):
            case ("udp", s, _, _, data) if s is sock:
                got.append(int(data))
                assert len(genudp.self().messages()) <= 3  # never more than N at a time
                if mode == "once":  # passive now, without a message: ask for the next
                    mode = 3 if len(got) % 4 == 0 else "once"
                    sock.setopts(active=mode)
                    rearmed += 1
            case ("udp_passive", s) if s is sock:  # the N ran out
                mode = "once"
                sock.setopts(active=mode)
                rearmed += 1
    producer.join(10)
    sock.close()
    os.rmdir(os.path.dirname(path))
    return got, rearmed


if __name__ == "__main__":
    print(main())

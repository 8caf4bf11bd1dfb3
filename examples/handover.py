"""controlling_process: an acceptor opens a socket per client and hands it to a worker.

Only the owner reads a socket and receives its messages; ``sock.controlling_process(pid)`` gives
both to another process. Datagrams that reached the old owner's mailbox but were not taken yet
move along, in order, so nothing is lost or reordered at the hand-over.
"""

import genudp


def worker(parent: genudp.Pid) -> None:
    while True:
        match genudp.receive(timeout=10):
            case ("socket", sock):
                parent.send(("worker owns it", sock.owner == genudp.self()))
            case ("udp", sock, host, port, data):
                sock.send(b"worker got " + data, (host, port))
            case "stop":
                return


def main() -> list[object]:
    me = genudp.self()
    w = genudp.spawn(worker, me, name="worker")
    results: list[object] = []
    with genudp.open(ip="127.0.0.1", active=False) as client:
        sock = genudp.open(ip="127.0.0.1", active="once")  # owned by this process for now
        dest = ("127.0.0.1", sock.sockname()[1])
        client.send(b"first", dest)
        results.append(genudp.receive(timeout=10)[4])  # the acceptor reads the first itself
        client.send(b"second", dest)
        sock.setopts(active=True)
        # Hand it over: "second", if already in this mailbox, moves with the socket.
        sock.controlling_process(w)
        w.send(("socket", sock))
        results.append(genudp.receive(lambda m: m[0] == "worker owns it", timeout=10)[1])
        results.append(client.recv(timeout=10)[2])
        w.send("stop")
    w.join(10)
    return results


if __name__ == "__main__":
    print(main())

"""A UDP echo server in a process of its own, and a client that talks to it."""

import genudp


def serve(parent: genudp.Pid) -> None:
    sock = genudp.open(ip="127.0.0.1")  # port 0: the kernel picks one
    parent.send(("bound", sock.sockname()[1]))  # the client sends only after this
    while True:
        match genudp.receive():
            case ("udp", s, _host, _port, b"stop") if s is sock:
                return  # the process ends; its socket closes
            case ("udp", s, host, port, data) if s is sock:
                sock.send(data.upper(), (host, port))


def main() -> list[bytes]:
    server = genudp.spawn(serve, genudp.self(), name="udp-echo")
    _, port = genudp.receive(lambda m: m[0] == "bound", timeout=10)
    with genudp.open(ip="127.0.0.1", active=False) as client:
        replies = []
        for word in (b"hello", b"udp"):
            client.send(word, ("127.0.0.1", port))
            replies.append(client.recv(timeout=10)[2])
        client.send(b"stop", ("127.0.0.1", port))
    server.join(10)
    return replies


if __name__ == "__main__":
    print(main())

"""An echo server over a Unix-domain datagram socket, and a client that talks to it."""

import tempfile

import genudp


def serve(path: str, ready: genudp.Pid) -> None:
    with genudp.open(path=path, active=True) as sock:
        ready.send("ready")
        while True:
            match genudp.receive():
                case ("udp", s, sender, _port, b"stop") if s is sock:
                    return
                case ("udp", s, sender, _port, data) if s is sock:
                    sock.send(data.upper(), sender)


def main() -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        server = genudp.spawn(serve, f"{tmp}/echo.sock", genudp.self())
        genudp.receive(lambda m: m == "ready", timeout=10)
        with genudp.open(path=f"{tmp}/client.sock", active=False) as client:
            replies = []
            for word in (b"hello", b"gen_udp"):
                client.send(word, f"{tmp}/echo.sock")
                replies.append(client.recv(timeout=10)[2])
            client.send(b"stop", f"{tmp}/echo.sock")
        server.join(10)
        return replies


if __name__ == "__main__":
    print(main())

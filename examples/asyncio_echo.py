"""The UDP echo pair in asyncio: a task that is a process, active mode, asend and arecv."""

import asyncio

import genudp
import genudp.aio


async def serve(parent: genudp.Pid) -> None:
    sock = genudp.open(ip="127.0.0.1")  # active; owned by this task's process
    parent.send(("bound", sock.sockname()[1]))
    while True:
        match await genudp.aio.receive():
            case "stop":
                return
            case ("udp", s, host, port, data) if s is sock:
                await sock.asend(data.upper(), (host, port))


async def main() -> list[bytes]:
    server = genudp.aio.spawn(serve, genudp.aio.self())
    _, port = await genudp.aio.receive(lambda m: m[0] == "bound", timeout=10)
    replies = []
    with genudp.open(ip="127.0.0.1", active=False) as client:
        for word in (b"hello", b"asyncio"):
            await client.asend(word, ("127.0.0.1", port))
            replies.append((await client.arecv(timeout=10))[2])
    server.send("stop")
    await genudp.aio.join(server, timeout=10)
    return replies


if __name__ == "__main__":
    print(asyncio.run(main()))

#!/usr/bin/env escript
%%! -noshell
%% A gen_udp peer that the interop tests drive one line at a time on stdin.
%%
%% Each command prints exactly one reply line. Binaries (paths, data) travel as hex; "-" is
%% the empty binary. Addresses print as "local <hexpath>" or "inet <ip> <port>".
%%
%%   open <inet|socket> <local|inet|inet6> <bind> <active> [<buffer>]
%%                                                           -> OK <address>   (closes any earlier one)
%%        buffer: OTP's user-level buffer in bytes (recbuf becomes 4x it), or "default" to keep
%%        OTP's own: it silently truncates longer datagrams
%%        bind: hex path / hex "\0name" (local), "-" (unbound / any port), or an IP (port 0)
%%        active: true | false | once | <int>
%%   send local <hexpath> <hexdata> | send inet <ip> <port> <hexdata> | send connected <hexdata>
%%                                                           -> OK | ERROR <reason>
%%   connect local <hexpath> | connect inet <ip> <port>      -> OK | ERROR <reason>
%%   recv <ms>        passive read                           -> UDP <address> <hexdata> | ERROR <reason>
%%   take <ms>        next message in the mailbox            -> UDP <address> <hexdata> | PASSIVE | TIMEOUT | OTHER <term>
%%   setopts active <active>                                 -> OK | ERROR <reason>
%%   getopts active                                          -> ACTIVE <value>
%%   multicast <ifaddr> <group>   add_membership             -> OK | ERROR <reason>
%%   broadcast                    {broadcast, true}          -> OK | ERROR <reason>
%%   strays           every message left in the mailbox      -> STRAYS <n> <first few>
%%   close                                                   -> OK   (the socket, if any)
%%   quit
-mode(compile).

main(_) ->
    loop(undefined).

loop(S) ->
    case io:get_line("") of
        eof -> halt(0);
        Line ->
            Words = string:lexemes(string:trim(Line), " "),
            case Words of
                ["quit"] -> halt(0);
                _ ->
                    {Reply, S2} = try command(Words, S)
                                  catch C:E:St ->
                                          {io_lib:format("CRASH ~w:~0p ~0p", [C, E, lists:sublist(St, 2)]), S}
                                  end,
                    io:format("~s~n", [Reply]),
                    loop(S2)
            end
    end.

command(["open" | _] = Words, S) when S =/= undefined ->
    gen_udp:close(S),
    command(Words, undefined);
command(["open", Backend, Family, Bind, Active], S) ->
    command(["open", Backend, Family, Bind, Active, "default"], S);
command(["open", Backend, Family, Bind, Active, Buffer], _) ->
    Base = [binary, {active, active(Active)} | case Buffer of
                                                   "default" -> [];
                                                   %% OTP 25's inet backend also keeps UDP's
                                                   %% kernel recbuf at 16 KiB, which drops a
                                                   %% 60 KB datagram queued behind another.
                                                   _ -> [{buffer, list_to_integer(Buffer)},
                                                         {recbuf, 4 * list_to_integer(Buffer)}]
                                               end],
    Opts0 = case {Family, Bind} of
                {"local", "-"} -> [local | Base];
                {"local", Hex} -> [local, {ifaddr, {local, unhex(Hex)}} | Base];
                {F, "-"} -> [list_to_atom(F) | Base];
                {F, Ip} -> [list_to_atom(F), {ip, ip(Ip)} | Base]
            end,
    %% inet_backend must come first.
    Opts = case Backend of
               "socket" -> [{inet_backend, socket} | Opts0];
               "inet" -> Opts0
           end,
    case gen_udp:open(0, Opts) of
        {ok, S} -> {["OK ", sockname(S)], S};
        {error, R} -> {io_lib:format("ERROR ~w", [R]), undefined}
    end;
command(["send", "local", Path, Data], S) ->
    {result(gen_udp:send(S, {local, unhex(Path)}, 0, unhex(Data))), S};
command(["send", "inet", Ip, Port, Data], S) ->
    {result(gen_udp:send(S, ip(Ip), list_to_integer(Port), unhex(Data))), S};
command(["send", "connected", Data], S) ->
    {result(gen_udp:send(S, unhex(Data))), S};
command(["connect", "local", Path], S) ->
    {result(gen_udp:connect(S, {local, unhex(Path)}, 0)), S};
command(["connect", "inet", Ip, Port], S) ->
    {result(gen_udp:connect(S, ip(Ip), list_to_integer(Port))), S};
command(["recv", Ms], S) ->
    case gen_udp:recv(S, 0, list_to_integer(Ms)) of
        {ok, {Addr, Port, Data}} -> {["UDP ", address(Addr, Port), " ", hex(Data)], S};
        {ok, {Addr, Port, _Anc, Data}} -> {["UDP ", address(Addr, Port), " ", hex(Data)], S};
        {error, R} -> {io_lib:format("ERROR ~w", [R]), S}
    end;
command(["take", Ms], S) ->
    receive
        {udp, S, Addr, Port, Data} -> {["UDP ", address(Addr, Port), " ", hex(Data)], S};
        {udp, S, Addr, Port, _Anc, Data} -> {["UDP ", address(Addr, Port), " ", hex(Data)], S};
        {udp_passive, S} -> {"PASSIVE", S};
        Other -> {io_lib:format("OTHER ~0p", [Other]), S}
    after list_to_integer(Ms) -> {"TIMEOUT", S}
    end;
command(["setopts", "active", A], S) ->
    {result(inet:setopts(S, [{active, active(A)}])), S};
command(["getopts", "active"], S) ->
    {ok, [{active, A}]} = inet:getopts(S, [active]),
    {io_lib:format("ACTIVE ~w", [A]), S};
command(["multicast", If, Group], S) ->
    {result(inet:setopts(S, [{add_membership, {ip(Group), ip(If)}}])), S};
command(["broadcast"], S) ->
    {result(inet:setopts(S, [{broadcast, true}])), S};
command(["strays"], S) ->
    Strays = drain([]),
    {io_lib:format("STRAYS ~w ~0p", [length(Strays), lists:sublist(Strays, 3)]), S};
command(["close"], undefined) ->
    {"OK", undefined};
command(["close"], S) ->
    ok = gen_udp:close(S),
    {"OK", undefined};
command(Words, S) ->
    {io_lib:format("CRASH unknown command ~0p", [Words]), S}.

drain(Acc) ->
    receive M -> drain([M | Acc]) after 0 -> lists:reverse(Acc) end.

result(ok) -> "OK";
result({error, R}) -> io_lib:format("ERROR ~w", [R]).

active("true") -> true;
active("false") -> false;
active("once") -> once;
active(N) -> list_to_integer(N).

ip(Text) ->
    {ok, Ip} = inet:parse_address(Text),
    Ip.

sockname(S) ->
    case inet:sockname(S) of
        {ok, {{local, Path}, Port}} -> address({local, Path}, Port);
        {ok, {local, Path}} -> address({local, Path}, 0);
        {ok, {Ip, Port}} -> address(Ip, Port);
        {error, R} -> io_lib:format("unnamed ~w", [R])
    end.

address({local, Path}, _Port) -> ["local ", hex(iolist_to_binary([Path]))];
%% The socket backend of OTP 25 reports an unbound local sender as {unspec, <<>>}.
address({unspec, <<>>}, _Port) -> "unspec -";
address(Ip, Port) -> io_lib:format("inet ~s ~B", [inet:ntoa(Ip), Port]).

hex(<<>>) -> "-";
hex(Bin) -> [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin].

unhex("-") -> <<>>;
unhex(Hex) -> binary:decode_hex(list_to_binary(Hex)).

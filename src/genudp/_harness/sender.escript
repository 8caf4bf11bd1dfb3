#!/usr/bin/env escript
%%! -noshell
-mode(compile).

main([Backend, Path, NStr, SizeStr]) ->
    N = list_to_integer(NStr),
    Size = list_to_integer(SizeStr),
    Base = [local, binary, {active, false}],
    Opts = case Backend of
               "socket" -> [{inet_backend, socket} | Base];
               _ -> Base
           end,
    {ok, S} = gen_udp:open(0, Opts),
    Dest = {local, list_to_binary(Path)},
    statistics(runtime),
    T0 = erlang:monotonic_time(millisecond),
    {Ok, Errors} = send_loop(S, Dest, 0, N, Size, [], #{}),
    {_, CpuMs} = statistics(runtime),
    T1 = erlang:monotonic_time(millisecond),
    %% Give late replies from the port a moment to land (OTP-19332 leaked them).
    receive after 200 -> ok end,
    Strays = drain([]),
    io:format("OK ~s~n", [lists:join(",", [integer_to_list(I) || I <- lists:reverse(Ok)])]),
    io:format("ERRORS ~s~n", [lists:join(",", [io_lib:format("~w=~w", [K, V]) || {K, V} <- maps:to_list(Errors)])]),
    io:format("STRAYS ~w~n", [length(Strays)]),
    io:format("CPU ~.3f ~.3f~n", [CpuMs / 1000, (T1 - T0) / 1000]),
    io:format("NOTE OTP ~s, inet_backend=~s, first strays: ~w~n",
              [erlang:system_info(otp_release), Backend, lists:sublist(Strays, 2)]),
    halt(0).

send_loop(_S, _D, I, N, _Size, Ok, E) when I >= N -> {Ok, E};
send_loop(S, D, I, N, Size, Ok, E) ->
    Head = iolist_to_binary(io_lib:format("0 ~B ", [I])),
    Pad = binary:copy(<<".">>, max(0, Size - byte_size(Head))),
    case gen_udp:send(S, D, 0, <<Head/binary, Pad/binary>>) of
        ok -> send_loop(S, D, I + 1, N, Size, [I | Ok], E);
        {error, R} ->
            %% The application's back-off after a failed send, as in genudp's scenario.
            receive after 1 -> ok end,
            send_loop(S, D, I + 1, N, Size, Ok, maps:update_with(R, fun(X) -> X + 1 end, 1, E))
    end.

drain(Acc) ->
    receive M -> drain([M | Acc]) after 0 -> lists:reverse(Acc) end.

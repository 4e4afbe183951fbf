"""AF_UNIX sockets: stream, datagram and seqpacket, with names, fd passing and peer credentials."""

/* main.c - entry point of the nomclient binary. */
#include "client/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }

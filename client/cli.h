/* cli.h - the nomclient command line. */
#ifndef NOMCLIENT_CLI_H
#define NOMCLIENT_CLI_H

/* Runs the command named by argv[1]; returns the process exit code. */
int cli_main(int argc, char **argv);

#endif

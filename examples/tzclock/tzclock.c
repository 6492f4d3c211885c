// tzclock: prints a moment in several time zones, from the image's tzdata,
// and how many certificates the image's CA bundle holds. A small dynamically
// linked program for the Debian-based example: it needs the C library, the
// zone files and the bundle that debian-base brings.
//   tzclock [UNIX_SECONDS] ZONE...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int count_certificates(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0) ++n;
  fclose(f);
  return n;
}

int main(int argc, char** argv) {
  int first = 1;
  time_t when = time(NULL);
  if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
    when = (time_t)strtoll(argv[1], NULL, 10);
    first = 2;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: tzclock [UNIX_SECONDS] ZONE...\n");
    return 2;
  }
  int status = 0;
  for (int i = first; i < argc; ++i) {
    char path[512];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", argv[i]);
    FILE* zone = fopen(path, "r");
    if (!zone) {
      fprintf(stderr, "tzclock: no time zone %s\n", argv[i]);
      status = 1;
      continue;
    }
    fclose(zone);
    setenv("TZ", argv[i], 1);
    tzset();
    struct tm tm;
    char text[64];
    localtime_r(&when, &tm);
    strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &tm);
    printf("%-20s %s\n", argv[i], text);
  }
  const char* bundle = getenv("SSL_CERT_FILE");
  if (!bundle) bundle = "/etc/ssl/certs/ca-certificates.crt";
  printf("%d certificates in %s\n", count_certificates(bundle), bundle);
  return status;
}

/* timefmt.c - Go's Time.Format for a UTC time (what consul-template's
 * timestamp prints): the layout's chunks found as time/format.go's
 * nextStdChunk does, "Jan 2 15:04:05 2006 MST" style. */
#include <string.h>

#include "client/template/internal.h"

enum std {
    STD_NONE,
    STD_LONG_MONTH,
    STD_MONTH,
    STD_NUM_MONTH,
    STD_ZERO_MONTH,
    STD_LONG_WEEKDAY,
    STD_WEEKDAY,
    STD_DAY,
    STD_UNDER_DAY,
    STD_ZERO_DAY,
    STD_UNDER_YEARDAY,
    STD_ZERO_YEARDAY,
    STD_HOUR,
    STD_HOUR12,
    STD_ZERO_HOUR12,
    STD_MINUTE,
    STD_ZERO_MINUTE,
    STD_SECOND,
    STD_ZERO_SECOND,
    STD_LONG_YEAR,
    STD_YEAR,
    STD_PM,
    STD_pm,
    STD_TZ,
    STD_ISO_TZ,
    STD_ISO_SECONDS_TZ,
    STD_ISO_SHORT_TZ,
    STD_ISO_COLON_TZ,
    STD_ISO_COLON_SECONDS_TZ,
    STD_NUM_TZ,
    STD_NUM_SECONDS_TZ,
    STD_NUM_SHORT_TZ,
    STD_NUM_COLON_TZ,
    STD_NUM_COLON_SECONDS_TZ,
    STD_FRAC0,
    STD_FRAC9,
};

static bool starts_lower(const char *s, size_t n)
{
    return n > 0 && s[0] >= 'a' && s[0] <= 'z';
}

static bool is_digit_at(const char *s, size_t n, size_t i)
{
    return i < n && s[i] >= '0' && s[i] <= '9';
}

static bool at(const char *s, size_t n, size_t i, const char *w)
{
    size_t k = strlen(w);
    return n >= i + k && memcmp(s + i, w, k) == 0;
}

/* Finds the next chunk: its start, code, length; frac digits and separator. */
static int next_chunk(const char *l, size_t n, size_t *start, size_t *len,
                      int *digits, char *sep)
{
    static const int std0x[] = {STD_ZERO_MONTH,  STD_ZERO_DAY,
                                STD_ZERO_HOUR12, STD_ZERO_MINUTE,
                                STD_ZERO_SECOND, STD_YEAR};
    for (size_t i = 0; i < n; i++) {
        *start = i;
        switch (l[i]) {
        case 'J':
            if (at(l, n, i, "Jan")) {
                if (at(l, n, i, "January")) {
                    *len = 7;
                    return STD_LONG_MONTH;
                }
                if (!starts_lower(l + i + 3, n - i - 3)) {
                    *len = 3;
                    return STD_MONTH;
                }
            }
            break;
        case 'M':
            if (n >= i + 3) {
                if (at(l, n, i, "Mon")) {
                    if (at(l, n, i, "Monday")) {
                        *len = 6;
                        return STD_LONG_WEEKDAY;
                    }
                    if (!starts_lower(l + i + 3, n - i - 3)) {
                        *len = 3;
                        return STD_WEEKDAY;
                    }
                }
                if (at(l, n, i, "MST")) {
                    *len = 3;
                    return STD_TZ;
                }
            }
            break;
        case '0':
            if (n >= i + 2 && l[i + 1] >= '1' && l[i + 1] <= '6') {
                *len = 2;
                return std0x[l[i + 1] - '1'];
            }
            if (n >= i + 3 && l[i + 1] == '0' && l[i + 2] == '2') {
                *len = 3;
                return STD_ZERO_YEARDAY;
            }
            break;
        case '1':
            if (n >= i + 2 && l[i + 1] == '5') {
                *len = 2;
                return STD_HOUR;
            }
            *len = 1;
            return STD_NUM_MONTH;
        case '2':
            if (at(l, n, i, "2006")) {
                *len = 4;
                return STD_LONG_YEAR;
            }
            *len = 1;
            return STD_DAY;
        case '_':
            if (n >= i + 2 && l[i + 1] == '2') {
                if (n >= i + 5 && memcmp(l + i + 1, "2006", 4) == 0) {
                    *start = i + 1; /* a literal _, then the year */
                    *len = 4;
                    return STD_LONG_YEAR;
                }
                *len = 2;
                return STD_UNDER_DAY;
            }
            if (n >= i + 3 && l[i + 1] == '_' && l[i + 2] == '2') {
                *len = 3;
                return STD_UNDER_YEARDAY;
            }
            break;
        case '3':
            *len = 1;
            return STD_HOUR12;
        case '4':
            *len = 1;
            return STD_MINUTE;
        case '5':
            *len = 1;
            return STD_SECOND;
        case 'P':
            if (n >= i + 2 && l[i + 1] == 'M') {
                *len = 2;
                return STD_PM;
            }
            break;
        case 'p':
            if (n >= i + 2 && l[i + 1] == 'm') {
                *len = 2;
                return STD_pm;
            }
            break;
        case '-':
            if (at(l, n, i, "-070000")) {
                *len = 7;
                return STD_NUM_SECONDS_TZ;
            }
            if (at(l, n, i, "-07:00:00")) {
                *len = 9;
                return STD_NUM_COLON_SECONDS_TZ;
            }
            if (at(l, n, i, "-0700")) {
                *len = 5;
                return STD_NUM_TZ;
            }
            if (at(l, n, i, "-07:00")) {
                *len = 6;
                return STD_NUM_COLON_TZ;
            }
            if (at(l, n, i, "-07")) {
                *len = 3;
                return STD_NUM_SHORT_TZ;
            }
            break;
        case 'Z':
            if (at(l, n, i, "Z070000")) {
                *len = 7;
                return STD_ISO_SECONDS_TZ;
            }
            if (at(l, n, i, "Z07:00:00")) {
                *len = 9;
                return STD_ISO_COLON_SECONDS_TZ;
            }
            if (at(l, n, i, "Z0700")) {
                *len = 5;
                return STD_ISO_TZ;
            }
            if (at(l, n, i, "Z07:00")) {
                *len = 6;
                return STD_ISO_COLON_TZ;
            }
            if (at(l, n, i, "Z07")) {
                *len = 3;
                return STD_ISO_SHORT_TZ;
            }
            break;
        case '.':
        case ',':
            if (i + 1 < n && (l[i + 1] == '0' || l[i + 1] == '9')) {
                char ch = l[i + 1];
                size_t j = i + 1;
                while (j < n && l[j] == ch)
                    j++;
                if (!is_digit_at(l, n, j)) {
                    *len = j - i;
                    *digits = (int)(j - (i + 1));
                    *sep = l[i];
                    return ch == '9' ? STD_FRAC9 : STD_FRAC0;
                }
            }
            break;
        }
    }
    *start = n;
    *len = 0;
    return STD_NONE;
}

static void append_int(struct nc_buf *b, long long x, int width)
{
    unsigned long long u = (unsigned long long)x;
    if (x < 0) {
        nc_buf_putc(b, '-');
        u = 0 - u;
    }
    char buf[24];
    int i = (int)sizeof buf;
    while (u >= 10) {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    }
    buf[--i] = (char)('0' + u);
    for (int w = (int)sizeof buf - i; w < width; w++)
        nc_buf_putc(b, '0');
    nc_buf_append(b, buf + i, sizeof buf - (size_t)i);
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(long long days, long long *y, int *m, int *d)
{
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool leap(long long y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

void tp_go_time_format(struct nc_buf *out, int64_t unix_ns, const char *l,
                       size_t n)
{
    static const char *const months[] = {
        "January", "February", "March",     "April",   "May",      "June",
        "July",    "August",   "September", "October", "November", "December"};
    static const char *const days[] = {"Sunday",    "Monday",   "Tuesday",
                                       "Wednesday", "Thursday", "Friday",
                                       "Saturday"};
    long long secs = unix_ns / 1000000000;
    long long nsec = unix_ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        secs--;
    }
    long long day = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    long long sod = secs - day * 86400;
    long long year;
    int month, mday;
    civil(day, &year, &month, &mday);
    static const int cum[] = {0,   31,  59,  90,  120, 151,
                              181, 212, 243, 273, 304, 334};
    int yday = cum[month - 1] + mday + (month > 2 && leap(year));
    int wday = (int)(((day % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int hour = (int)(sod / 3600), min = (int)(sod / 60 % 60),
        sec = (int)(sod % 60);
    if (!out->data)
        nc_buf_append(out, "", 0);
    while (n > 0) {
        size_t start, len;
        int digits = 0;
        char sep = '.';
        int std = next_chunk(l, n, &start, &len, &digits, &sep);
        nc_buf_append(out, l, start);
        if (std == STD_NONE)
            break;
        l += start + len;
        n -= start + len;
        switch (std) {
        case STD_YEAR:
            append_int(out, (year < 0 ? -year : year) % 100, 2);
            break;
        case STD_LONG_YEAR:
            append_int(out, year, 4);
            break;
        case STD_MONTH:
            nc_buf_append(out, months[month - 1], 3);
            break;
        case STD_LONG_MONTH:
            nc_buf_puts(out, months[month - 1]);
            break;
        case STD_NUM_MONTH:
            append_int(out, month, 0);
            break;
        case STD_ZERO_MONTH:
            append_int(out, month, 2);
            break;
        case STD_WEEKDAY:
            nc_buf_append(out, days[wday], 3);
            break;
        case STD_LONG_WEEKDAY:
            nc_buf_puts(out, days[wday]);
            break;
        case STD_DAY:
            append_int(out, mday, 0);
            break;
        case STD_UNDER_DAY:
            if (mday < 10)
                nc_buf_putc(out, ' ');
            append_int(out, mday, 0);
            break;
        case STD_ZERO_DAY:
            append_int(out, mday, 2);
            break;
        case STD_UNDER_YEARDAY:
            if (yday < 100) {
                nc_buf_putc(out, ' ');
                if (yday < 10)
                    nc_buf_putc(out, ' ');
            }
            append_int(out, yday, 0);
            break;
        case STD_ZERO_YEARDAY:
            append_int(out, yday, 3);
            break;
        case STD_HOUR:
            append_int(out, hour, 2);
            break;
        case STD_HOUR12:
            append_int(out, hour % 12 ? hour % 12 : 12, 0);
            break;
        case STD_ZERO_HOUR12:
            append_int(out, hour % 12 ? hour % 12 : 12, 2);
            break;
        case STD_MINUTE:
            append_int(out, min, 0);
            break;
        case STD_ZERO_MINUTE:
            append_int(out, min, 2);
            break;
        case STD_SECOND:
            append_int(out, sec, 0);
            break;
        case STD_ZERO_SECOND:
            append_int(out, sec, 2);
            break;
        case STD_PM:
            nc_buf_puts(out, hour >= 12 ? "PM" : "AM");
            break;
        case STD_pm:
            nc_buf_puts(out, hour >= 12 ? "pm" : "am");
            break;
        case STD_ISO_TZ:
        case STD_ISO_COLON_TZ:
        case STD_ISO_SECONDS_TZ:
        case STD_ISO_SHORT_TZ:
        case STD_ISO_COLON_SECONDS_TZ:
            nc_buf_putc(out, 'Z'); /* UTC */
            break;
        case STD_NUM_TZ:
            nc_buf_puts(out, "+0000");
            break;
        case STD_NUM_COLON_TZ:
            nc_buf_puts(out, "+00:00");
            break;
        case STD_NUM_SECONDS_TZ:
            nc_buf_puts(out, "+000000");
            break;
        case STD_NUM_SHORT_TZ:
            nc_buf_puts(out, "+00");
            break;
        case STD_NUM_COLON_SECONDS_TZ:
            nc_buf_puts(out, "+00:00:00");
            break;
        case STD_TZ:
            nc_buf_puts(out, "UTC");
            break;
        case STD_FRAC0:
        case STD_FRAC9: {
            char buf[9];
            long long u = nsec;
            for (int i = 8; i >= 0; i--) {
                buf[i] = (char)('0' + u % 10);
                u /= 10;
            }
            int k = digits > 9 ? 9 : digits;
            if (std == STD_FRAC9) {
                while (k > 0 && buf[k - 1] == '0')
                    k--;
                if (k == 0)
                    break;
            }
            nc_buf_putc(out, sep);
            nc_buf_append(out, buf, (size_t)k);
            break;
        }
        }
    }
}

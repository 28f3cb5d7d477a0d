package memcachedtest

import (
	"strings"
	"testing"
)

func TestMetaCommands(t *testing.T) {
	tests := []struct {
		name  string
		steps []exchange
	}{
		{"mg miss and hit", []exchange{
			ex("mg k v\r\n", "EN"),
			ex("ms k 3 F9\r\nabc\r\n", "HD"),
			ex("mg k\r\n", "HD"),
			ex("mg k v\r\n", "VA 3", "abc"),
			ex("mg k s f c k O123 v\r\n", "VA 3 s3 f9 c1 kk O123", "abc"),
		}},
		{"mg q hides only misses, mn ends the pipeline", []exchange{
			ex("ms a 1\r\n1\r\n", "HD"),
			ex("mg a v q k\r\nmg b v q k\r\nmg c v q k\r\nmn\r\n", "VA 1 ka", "1", "MN"),
		}},
		{"mg t h l report state before the fetch", []exchange{
			ex("ms k 1 T100\r\nx\r\n", "HD"),
			ex("mg k t h l\r\n", "HD t100 h0 l0"),
			ex("mg k h\r\n", "HD h1"),
			// Flags act in request order: t before T reports the old TTL.
			ex("mg k t T0\r\n", "HD t100"),
			ex("mg k t\r\n", "HD t-1"),
		}},
		{"mg u does not count as a fetch", []exchange{
			ex("ms k 1\r\nx\r\n", "HD"),
			ex("mg k u\r\n", "HD"),
			ex("mg k h\r\n", "HD h0"),
		}},
		{"mg N vivifies and hands out one win", []exchange{
			ex("mg k N30 s c t v\r\n", "VA 0 s0 c1 t30 W", ""),
			ex("mg k N30 v\r\n", "VA 0 Z", ""),
			ex("ms k 2\r\nok\r\n", "HD"),
			ex("mg k v\r\n", "VA 2", "ok"),
		}},
		{"mg R wins a recache once the TTL runs low", []exchange{
			ex("ms k 1 T100\r\nx\r\n", "HD"),
			ex("mg k R50\r\n", "HD"),
			ex("mg k R200\r\n", "HD W"),
			ex("mg k R200\r\n", "HD Z"),
		}},
		{"mg E sets the cas of a vivified item", []exchange{
			ex("mg k N10 E777 c\r\n", "HD c777 W"),
		}},
		{"mg errors", []exchange{
			ex("mg\r\n", "ERROR"),
			ex("mg k v v\r\n", "CLIENT_ERROR duplicate flag"),
			ex("mg k !\r\n", "CLIENT_ERROR invalid flag"),
			ex("mg k Tx\r\n", msgBadToken),
			ex("mg k O"+strings.Repeat("o", 33)+"\r\n", msgOpaqueTooLong),
			ex("ms k 1\r\nx\r\nmg k O"+strings.Repeat("o", 33)+"\r\n", "HD", msgOpaqueTooLong),
			ex("mg "+strings.Repeat("k", 251)+"\r\n", msgBadFormat),
		}},
		{"ms modes", []exchange{
			ex("ms k 1 ME\r\na\r\n", "HD"),
			ex("ms k 1 ME\r\nb\r\n", "NS"),
			ex("ms nope 1 MR\r\nb\r\n", "NS"),
			ex("ms k 1 MR\r\nb\r\n", "HD"),
			ex("ms k 1 MA\r\n>\r\n", "HD"),
			ex("ms k 1 MP\r\n<\r\n", "HD"),
			ex("ms nope 1 MA\r\n>\r\n", "NS"),
			ex("ms k 1 MS\r\nz\r\n", "HD"),
			ex("ms k 1 MQ\r\nz\r\n", "CLIENT_ERROR invalid mode for ms M token"),
			ex("mg k v\r\n", "VA 1", "z"),
		}},
		{"ms cas, c, k, O, s and q", []exchange{
			ex("ms k 2 c k O7 s\r\nab\r\n", "HD c1 kk O7 s2"),
			ex("ms k 1 C99 c\r\nx\r\n", "EX c0"),
			ex("ms nope 1 C1\r\nx\r\n", "NF"),
			ex("ms k 1 C1 c\r\nx\r\n", "HD c2"),
			ex("ms k 1 MA C2 s\r\ny\r\n", "HD s2"),
			ex("ms k 1 q\r\nz\r\nms k 1 C1 q\r\nz\r\nmn\r\n", "EX", "MN"),
		}},
		{"ms E sets the new cas", []exchange{
			ex("ms k 1 E12345 c\r\nx\r\n", "HD c12345"),
			ex("mg k c\r\n", "HD c12345"),
		}},
		{"ms N vivifies in append mode", []exchange{
			ex("ms k 3 MA N0\r\nabc\r\n", "HD"),
			ex("ms k 3 MA N0\r\ndef\r\n", "HD"),
			ex("mg k v\r\n", "VA 6", "abcdef"),
		}},
		{"ms errors swallow the data block", []exchange{
			ex("ms k 1 zz\r\nx\r\n", "CLIENT_ERROR invalid flag"),
			ex("ms k 1 q q\r\nx\r\n", "CLIENT_ERROR duplicate flag"),
			ex("ms k 1 Tx\r\nx\r\n", msgBadToken),
			ex("ms k 1\r\nxyz\r\n", msgBadChunk, "ERROR"),
			ex("ms k\r\n", msgBadFormat),
			ex("ms k -1\r\n", msgBadFormat),
			ex("mg k\r\n", "EN"),
		}},
		{"md", []exchange{
			ex("md k\r\n", "NF"),
			ex("ms k 1\r\nx\r\n", "HD"),
			ex("md k C5 k O1\r\n", "EX kk O1"),
			ex("md k q\r\nmd k q\r\nmn\r\n", "NF", "MN"),
			ex("md k x\r\n", "NF"),
		}},
		{"md I marks stale; the next mg wins, later ones see Z", []exchange{
			ex("ms k 1 T0\r\nx\r\n", "HD"),
			ex("md k I T30\r\n", "HD"),
			ex("mg k t c v\r\n", "VA 1 t30 c2 X W", "x"),
			ex("mg k v\r\n", "VA 1 Z X", "x"),
			ex("ms k 1 C1 I\r\ny\r\n", "HD"),
			ex("mg k v\r\n", "VA 1 Z X", "y"),
			ex("ms k 1\r\nz\r\n", "HD"),
			ex("mg k v\r\n", "VA 1", "z"),
		}},
		{"md x leaves an empty item with new flags", []exchange{
			ex("ms k 3 F1\r\nabc\r\n", "HD"),
			ex("md k x F7 T0\r\n", "HD"),
			ex("mg k v f\r\n", "VA 0 f7", ""),
		}},
		{"ma", []exchange{
			ex("ma k\r\n", "NF"),
			ex("ma k N0 J10 v\r\n", "VA 2", "10"),
			ex("ma k v\r\n", "VA 2", "11"),
			ex("ma k v MD D20\r\n", "VA 1", "0"),
			ex("ma k v M+ D18446744073709551615\r\n", "VA 20", "18446744073709551615"),
			ex("ma k v MI\r\n", "VA 1", "0"),
			ex("ma k c t k O3\r\n", "HD c6 t-1 kk O3"),
			ex("ma k q\r\nma nope q\r\nmn\r\n", "NF", "MN"),
			ex("ma k C1\r\n", "EX"),
			ex("ma k E99 c\r\n", "HD c99"),
			ex("ma k MX\r\n", "CLIENT_ERROR invalid mode for ma M token"),
			ex("ma k Dx\r\n", msgInvalidOrDup),
			ex("ms s 1\r\nx\r\nma s\r\n", "HD", msgNonNumeric),
		}},
		{"ma T and N set the TTL", []exchange{
			ex("ma k t N100 J1\r\n", "HD t-1"),
			ex("mg k t\r\n", "HD t100"),
			ex("ma k T50 t\r\n", "HD t50"),
			ex("mg k t\r\n", "HD t50"),
		}},
		{"me", []exchange{
			ex("me k\r\n", "EN"),
			ex("ms k 5 T100\r\nhello\r\n", "HD"),
			ex("me k\r\n", "ME k exp=100 la=0 cas=1 fetch=no cls=1 size=65"),
			ex("me\r\n", msgBadFormat),
		}},
		{"base64 keys", []exchange{
			ex("ms AAEC 2 b k\r\nhi\r\n", "HD kAAEC b"),
			ex("mg AAEC b k v\r\n", "VA 2 kAAEC b", "hi"),
			ex("me AAEC b\r\n", "ME AAEC exp=-1 la=0 cas=1 fetch=yes cls=1 size=64"),
			ex("mg !! b\r\n", "CLIENT_ERROR error decoding key"),
			ex("md AAEC b q\r\nmg AAEC b\r\n", "EN"),
		}},
		{"unknown meta command", []exchange{
			ex("mx k\r\n", "ERROR"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{Clock: NewManualClock(testEpoch)})
			runExchanges(t, dialServer(t, s), tt.steps)
		})
	}
}

func TestMetaAndTextShareItems(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.do("set k 5 0 2\r\nhi\r\n", "STORED")
	w.do("mg k v f\r\n", "VA 2 f5", "hi")
	w.do("ms k 3 F6\r\nbye\r\n", "HD")
	w.do("gets k\r\n", "VALUE k 6 3 2", "bye", "END")
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/imapconn"
	"github.com/mailshift/mailshift/internal/secrets"
)

// clientCodec is the payload codec of the starter's Temporal clients: the
// keys of the worker configuration at cfgPath, else $MAILSHIFT_CONFIG,
// else that of the starter demo or serve at hostPort. With none of them it
// is keyless: what the starter writes goes in clear (the worker reads
// both), and an encrypted payload it reads fails saying the keys are
// missing, rather than as an unknown encoding.
func clientCodec(cfgPath, hostPort string) (*codec.Codec, error) {
	if cfgPath == "" {
		cfgPath = os.Getenv("MAILSHIFT_CONFIG")
	}
	if cfgPath == "" {
		if s, _ := lookupSession(hostPort); s != nil {
			cfgPath = s.Config
		}
	}
	if cfgPath == "" {
		return &codec.Codec{}, nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("payload keys: %w", err)
	}
	c, err := codec.FromConfig(cfg.PayloadEncryption)
	if err != nil {
		return nil, fmt.Errorf("payload keys of %s: %w", cfgPath, err)
	}
	if c == nil {
		return &codec.Codec{}, nil
	}
	return c, nil
}

// withCodec makes opts encrypt and decrypt as the worker does (see
// clientCodec; opts.HostPort must be set).
func withCodec(opts *client.Options, cfgPath string) error {
	c, err := clientCodec(cfgPath, opts.HostPort)
	if err != nil {
		return err
	}
	c.Apply(opts)
	return nil
}

// runCodecServer is `starter codec-server`: Temporal's remote codec
// protocol over HTTP with the configuration's payload keys, for the Web UI
// and the temporal CLI (--codec-endpoint) to show payloads decrypted.
func runCodecServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "the worker's configuration, with payload_encryption (default $MAILSHIFT_CONFIG)")
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve on")
	tokenFile := fs.String("token-file", "", "file (mode 0600) holding the bearer token every request must carry (Authorization: Bearer TOKEN)")
	var origins []string
	fs.Func("cors-origin", "a browser origin allowed to call the endpoint: the Web UI's, e.g. http://127.0.0.1:8233 (repeat or comma-separate for more)", func(s string) error {
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("codec-server: unexpected argument %q (flags only)", fs.Arg(0))
	}
	if *cfgPath == "" {
		return errors.New("codec-server: --config (or MAILSHIFT_CONFIG) is required: the configuration with payload_encryption")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.PayloadEncryption == nil {
		return fmt.Errorf("codec-server: %s has no payload_encryption: there is nothing to decrypt", *cfgPath)
	}
	c, err := codec.FromConfig(cfg.PayloadEncryption)
	if err != nil {
		return err
	}
	o := codec.HandlerOptions{CORSOrigins: origins}
	if *tokenFile != "" {
		if o.Token, err = secrets.Ref("file:" + *tokenFile).ResolveString(); err != nil {
			return fmt.Errorf("codec-server: --token-file: %w", err)
		}
		if strings.TrimSpace(o.Token) == "" {
			return fmt.Errorf("codec-server: --token-file %s is empty", *tokenFile)
		}
	}
	srv, err := codec.Serve(*listen, c, o)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("mailshift codec server: %s (keys %s, active %s)\n", srv.URL(), strings.Join(c.KeyIDs(), ", "), c.ActiveKey())
	if host, _, err := net.SplitHostPort(*listen); err == nil && o.Token == "" && !imapconn.IsLoopback(host) {
		fmt.Fprintf(os.Stderr, "codec-server: warning: no --token-file and %s is not loopback: whoever reaches it can decrypt every payload\n", *listen)
	}
	if len(origins) > 0 {
		fmt.Printf("  Web UI origins allowed: %s\n", strings.Join(origins, ", "))
	}
	fmt.Printf("  temporal workflow show --workflow-id ID --codec-endpoint %s", srv.URL())
	if o.Token != "" {
		fmt.Printf(` --codec-auth "Bearer $(cat %s)"`, *tokenFile)
	}
	fmt.Println()
	<-ctx.Done()
	return nil
}

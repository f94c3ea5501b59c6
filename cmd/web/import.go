package main

import "context"

func importCmd(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

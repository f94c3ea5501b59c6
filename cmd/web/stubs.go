package main

import "context"

func replay(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

func verify(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

func export(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

func importCmd(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

func anchorCmd(ctx context.Context, e env, args []string) error {
	return fail(exitFailed, "not built yet")
}

//go:build !tamago

package main

import "github.com/xenvtpm/xenvtpm/domain"

func main() { domain.RefuseHost("tisxen") }

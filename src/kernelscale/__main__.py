from kernelscale.cli.app import main

main()
